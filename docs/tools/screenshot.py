"""Render the real main window to a PNG for the README (run under Xvfb or offscreen).

    python docs/tools/screenshot.py docs/screenshot.png [CLIP.wav ...] [--model FOLDER | --sample]

With a model each clip is transcribed by it through the engine, as the app does, so the text,
punctuation, colors and alternatives are the model's own. The default model is Whisper-base
(`make whisper-model`), which understands the real clips of ../shared/audio; without it, the
demo model in resources/demo-model (it only knows synthetic speech: give it `tingxie-cli synth`
clips). With --sample, or without any model, the clips' published transcripts are shown with
illustrative confidences (labelled as such in the status bar). The window, fonts, waveform and
coloring are the real ones either way; the last four characters are shown as a live tail.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from engine.results import Alternative, Char, Segment

__all__ = ["main"]

_SHARED = Path(__file__).resolve().parents[3] / "shared" / "audio"
_DEFAULT_CLIPS = ("funasr_asr_example_zh.wav", "aishell1_BAC009S0764W0121.wav")


def _sample_segments(texts: list[str]) -> list[Segment]:
    """Published transcripts with a fixed, illustrative spread of confidences."""
    rng = np.random.default_rng(7)
    segments, t = [], 0.0
    for i, text in enumerate(texts):
        chars = []
        for c in text:
            conf = float(rng.choice([0.97, 0.93, 0.88, 0.72, 0.45], p=[0.5, 0.2, 0.1, 0.12, 0.08]))
            alts = (Alternative("事", round((1 - conf) * 0.6, 2)), Alternative("是", 0.02))
            chars.append(Char(c, t, t + 0.2, conf, alts))
            t += 0.22
        segments.append(Segment(i, chars[0].start, chars[-1].end, tuple(chars)))
        t += 0.6
    return segments


def _manifest_texts() -> dict[str, str]:
    rows = (_SHARED / "manifest.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return {r.split("\t")[0]: r.split("\t")[2] for r in rows if r.strip()}


def _transcribe(clips: list[Path], model) -> list[Segment]:
    """The clips as `model` (loaded by engine.loader) transcribes them."""
    from engine.loader import transcriber_for

    transcriber = transcriber_for(model)
    segments: list[Segment] = []
    for clip in clips:
        items, _info = transcriber.transcribe(clip)
        segments += [s for s in items if isinstance(s, Segment)]
    return segments


def _fill(window, clips: list[Path], model: str | None) -> None:
    """Put a transcript (with a live tail), the first clip's waveform and a queue on show."""
    from app.levels import ENVELOPE_BIN, envelope, level_percent
    from app.worker import ModelSummary
    from engine.audio import load_audio
    from engine.loader import load_model

    if model is None:
        texts = _manifest_texts()
        segments = _sample_segments([texts.get(c.name, "听写") for c in clips])
        window.statusBar().showMessage("sample text with illustrative confidences (no model)")
    else:  # loaded here, and shown as the window shows a model its worker loaded
        loaded = load_model(model)
        segments = _transcribe(clips, loaded)
        window._model_loaded(ModelSummary.of(loaded, model))
    audio = load_audio(clips[0])
    window.waveform.add_envelope(envelope(audio, ENVELOPE_BIN), level_percent(audio[-8000:]))
    window.transcript.set_segments(segments[:-1])
    last = segments[-1].chars
    split = max(1, len(last) - 4)
    window.transcript.apply_update(last[:split], last[split:])  # a live tail, lighter
    for job, clip in enumerate(clips, start=1):
        window.queue.add(job, str(clip))
        window.queue.set_state(job, "done")


def _hover_most_doubtful(window) -> None:
    """Show a doubtful character's hover tooltip, as a user pointing at it."""
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QApplication

    view = window.transcript
    if not view.chars:
        return
    # the least confident one with alternatives, so the tooltip shows them too
    index = min(range(len(view.chars)), key=lambda i: (not view.chars[i].alternatives,
                                                        view.chars[i].confidence))  # fmt: skip
    point = view.char_point(index)
    event = QHelpEvent(QEvent.Type.ToolTip, point, view.viewport().mapToGlobal(point))
    QApplication.sendEvent(view.viewport(), event)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python docs/tools/screenshot.py")
    parser.add_argument("out", type=Path)
    parser.add_argument("clips", nargs="*", type=Path)
    parser.add_argument(
        "--model",
        help="model folder that transcribes the clips (default: Whisper-base if fetched, else "
        "the demo model)",
    )
    parser.add_argument(
        "--sample",
        action="store_true",
        help="show the clips' published transcripts with illustrative confidences (no model)",
    )
    args = parser.parse_args(argv)
    clips = args.clips or [_SHARED / name for name in _DEFAULT_CLIPS]

    from PySide6.QtWidgets import QApplication

    from app.fonts import cjk_font
    from app.main import build_window
    from app.settings import open_settings
    from engine.library.store import Store

    qt = QApplication.instance() or QApplication(sys.argv[:1])
    qt.setFont(cjk_font())
    settings_dir = tempfile.mkdtemp(prefix="tingxie-shot-")
    window = build_window(
        open_settings(Path(settings_dir) / "settings.ini"),
        library=Store(Path(settings_dir) / "tingxie.db"),  # tabs as in the app, empty
    )
    window._devices_listed([])  # what this machine has; no dialog, no PortAudio needed
    window.resize(1400, 860)
    from app.demo import first_start_model  # Whisper-base when fetched, else the demo

    _fill(window, clips, None if args.sample else args.model or first_start_model())
    window.show()
    for _ in range(20):
        qt.processEvents()
        window.waveform.redraw()
    _hover_most_doubtful(window)
    for _ in range(20):
        qt.processEvents()
    if qt.platformName() == "xcb":  # a real screen: the tooltip (its own window) is in it
        g = window.frameGeometry()
        image = qt.primaryScreen().grabWindow(0, g.x(), g.y(), g.width(), g.height())
    else:
        image = window.grab()
    image.save(str(args.out))
    window.close()  # stops the engine worker and the tuning supervisor
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
