"""Render the Tune page mid-job to a PNG for the README: the real window, a real tuning job.

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python docs/tools/tune_screenshot.py \
        docs/tune.png

Synthesizes a few sentences of resources/corpus/medicine/train.txt with espeak-ng
(engine.tune.synth), loads the demo model (resources/demo-model) in the main window, chooses
the recordings on the Tune page, checks them and starts a quick LoRA job from the page as a
user would. Once the Watch step shows enough loss points and held-out CER points (the first
is the base model's, before any step) the window is saved, the job is cancelled and its
folder, with everything else, goes with the temporary directory. A few minutes of CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["main"]

_ROOT = Path(__file__).resolve().parents[2]
_SENTENCES = _ROOT / "resources" / "corpus" / "medicine" / "train.txt"
# The LoRA settings tests/test_demo_model.py chose on a dev split (they teach the demo model
# medical words in a few dozen steps), evaluated often so that the CER curve has points early.
_JOB = dict(
    preset="quick",
    device="cpu",
    learning_rate=3e-3,
    warmup_steps=4,
    lora_rank=16,
    batch_seconds=8.0,
    micro_batch_seconds=8.0,
    mask_time_prob=0.0,
    heldout_fraction=0.15,
    save_every=10,
)


def _wait(qt, done: Callable[[], bool], seconds: float, what: str) -> None:
    """Run the event loop until `done()`; SystemExit naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up after {seconds:.0f} s waiting for {what}")
        qt.processEvents()
        time.sleep(0.05)


def _synthesize(folder: Path, count: int) -> Path:
    """`count` medical sentences spoken by espeak-ng; returns their manifest."""
    from engine.tune.synth import SynthOptions, read_sentences, synthesize

    for _ in synthesize(read_sentences(_SENTENCES)[:count], folder, SynthOptions(seed=5)):
        pass
    return folder / "manifest.tsv"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python docs/tools/tune_screenshot.py")
    parser.add_argument("out", type=Path)
    parser.add_argument("--sentences", type=int, default=48, help="medical sentences to speak")
    parser.add_argument("--steps", type=int, default=40, help="steps of the job (not all run)")
    parser.add_argument("--eval-every", type=int, default=5, help="steps between CER points")
    parser.add_argument(
        "--cer-points", type=int, default=5, help="held-out CER points to wait for (>= 2)"
    )
    args = parser.parse_args(argv)

    from PySide6.QtWidgets import QApplication

    from app.demo import demo_model_dir
    from app.fonts import cjk_font
    from app.main import build_window
    from app.settings import open_settings
    from engine.library.store import Store

    qt = QApplication.instance() or QApplication(sys.argv[:1])
    qt.setFont(cjk_font())
    with (
        tempfile.TemporaryDirectory(prefix="tingxie-tune-shot-") as tmp,
        Store(Path(tmp) / "tingxie.db") as library,  # tabs as in the app, empty
    ):
        manifest = _synthesize(Path(tmp) / "clinic", args.sentences)
        window = build_window(open_settings(Path(tmp) / "settings.ini"), library=library)
        window._devices_listed([])  # what this machine has; no dialog, no PortAudio needed
        window.resize(1400, 860)
        window.show()
        page = window.tune_page
        window.pages.setCurrentWidget(page)
        model = str(demo_model_dir())
        window.load_model(model)
        _wait(qt, lambda: page.sources.model() == model, 120, "the demo model to load")

        page.sources.select_source(manifest)
        page.sources.name_edit.setText("clinic")
        values = {**_JOB, "steps": args.steps, "eval_every": args.eval_every}
        for name, value in values.items():
            page.how.form.set_value(name, value)
        page.check()
        _wait(qt, lambda: page.checker.check is not None, 120, "the data check")
        page.checker.accept_box.setChecked(True)  # a small set: warnings expected
        page.checker.next_button.click()
        page.how.start_button.click()
        watch = page.watch
        points = max(2, args.cer_points)
        # and one step more: the stats line shows a CER from the step after it was measured
        _wait(
            qt,
            lambda: len(watch.cer_steps) >= points and watch.steps[-1] > watch.cer_steps[-1],
            600,
            f"{points} CER points",
        )
        for _ in range(20):
            qt.processEvents()
        window.grab().save(str(args.out))
        print(f"wrote {args.out}: steps {watch.steps[-1]}, CER {watch.cers} %")

        page.cancel()
        _wait(qt, lambda: page.handle.running_kind() is None, 120, "the job to stop")
        window.close()  # stops the engine worker and the tuning supervisor
    return 0


if __name__ == "__main__":
    sys.exit(main())
