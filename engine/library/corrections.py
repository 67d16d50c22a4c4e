"""Verified review decisions → a named tuning dataset, and the hand-off to `tingxie-cli tune`.

The dataset is a folder the tuning engine imports as it is (`engine.data.load_dataset`):
`clips/*.wav` cut from the recordings, `manifest.tsv` (path, text), `summary.json`, and a
`tune.yaml` config for `tingxie-cli tune`. It is written into a temporary folder and swapped
in whole, so a crash or a full disk never leaves half a dataset.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from engine.errors import TingxieError

from .review import apply_edits, verified_pairs
from .store import Store

__all__ = [
    "Clip",
    "CorrectionOptions",
    "CorrectionSummary",
    "CorrectionsError",
    "build_dataset",
    "collect_clips",
]

log = logging.getLogger("tingxie.corrections")

Scope = Literal["segment", "span"]
# A folder name of its own: never "." or "..", which would name corrections/ or its parent.
_NAME = re.compile(r"^\w[\w.-]*$")


class CorrectionsError(TingxieError, ValueError):
    """No dataset can be made (nothing verified, bad name, unreadable recording)."""


@dataclass(frozen=True, slots=True)
class CorrectionOptions:
    """What becomes a training example."""

    # "segment": every segment holding a checked span, whole, with its edited text (CTC learns
    # best from full utterances); "span": only the checked spans themselves.
    scope: Scope = "segment"
    # Shorter clips are left out (the tuning engine skips them as too short anyway).
    min_seconds: float = 0.3

    def __post_init__(self) -> None:
        if self.scope not in Scope.__args__:
            raise ValueError(f"scope={self.scope!r}: choose one of {', '.join(Scope.__args__)}")
        if self.min_seconds < 0:
            raise ValueError(f"min_seconds={self.min_seconds}: must be 0 or more")


@dataclass(frozen=True, slots=True)
class Clip:
    """One training example: seconds [start, end] of a recording and its checked text."""

    audio: Path
    start: float
    end: float
    text: str
    transcript: int


@dataclass(frozen=True, slots=True)
class CorrectionSummary:
    """What the dataset holds, and how to tune on it."""

    name: str
    folder: Path
    manifest: Path
    config: Path
    examples: int
    seconds: float
    corrections: int  # fixes and picked alternatives
    accepted: int  # spans accepted as they were
    new_chars: tuple[str, ...]  # characters the model's vocabulary lacks
    transcripts: tuple[int, ...]

    @property
    def hours(self) -> float:
        return self.seconds / 3600

    @property
    def command(self) -> str:
        """The CLI hand-off that tunes the model on this dataset."""
        return f"tingxie-cli tune {self.config}"


def collect_clips(
    store: Store, transcript_ids: Iterable[int], options: CorrectionOptions | None = None
) -> list[Clip]:
    """The checked clips of the transcripts, in transcript and time order."""
    options = options or CorrectionOptions()
    clips = []
    for tid in transcript_ids:
        audio = store.audio_path(tid)
        original = store.original(tid)
        ops, head = store.chain(tid)
        pairs = verified_pairs(original, ops[:head])
        if pairs and audio is None:
            raise CorrectionsError("dataset.no_recording", transcript=tid)
        if options.scope == "span":
            found = [(p.start, p.end, p.text) for _, p in pairs]
        else:
            edited = apply_edits(original, ops[:head])
            found = [(edited[si].start, edited[si].end, edited[si].text) for si in _once(pairs)]
        clips += [
            Clip(audio, start, end, text, tid)
            for start, end, text in found
            if end - start >= options.min_seconds and text
        ]
    return clips


def _once(pairs: Sequence[tuple[int, object]]) -> list[int]:
    return list(dict.fromkeys(si for si, _ in pairs))


def _count_decisions(store: Store, transcript_ids: Iterable[int]) -> tuple[int, int]:
    fixes = accepted = 0
    for tid in transcript_ids:
        ops, head = store.chain(tid)
        for op in ops[:head]:
            accepted += op.kind == "accept"
            fixes += op.kind in ("fix", "alternative")  # a replace was never heard
    return fixes, accepted


def _write_folder(tmp: Path, clips: Sequence[Clip], summary: dict, model: str, name: str) -> None:
    from engine.atomic import atomic_write_text
    from engine.audio import AudioError, read_span, write_wav
    from engine.tune.config import TuneConfig
    from engine.tune.data import manifest_text

    (tmp / "clips").mkdir()
    rows = []
    for i, clip in enumerate(clips):
        rel = f"clips/{i:05d}.wav"
        try:
            write_wav(tmp / rel, read_span(clip.audio, clip.start, clip.end))
        except (AudioError, OSError) as e:
            raise CorrectionsError(
                "dataset.clip_failed", transcript=clip.transcript, error=e
            ) from e
        rows.append((rel, clip.text))
    atomic_write_text(tmp / "manifest.tsv", manifest_text(rows))
    atomic_write_text(tmp / "summary.json", json.dumps(summary, ensure_ascii=False, indent=2))
    # Tuned output beside the dataset, so rebuilding the dataset never deletes a tuned model.
    TuneConfig(model=model, data="manifest.tsv", output_dir=f"../{name}-tuned").save(
        tmp / "tune.yaml"
    )


def build_dataset(
    store: Store,
    transcript_ids: Sequence[int],
    name: str,
    *,
    model: str,
    vocab: Iterable[str] = (),
    folder: Path | None = None,
    options: CorrectionOptions | None = None,
) -> CorrectionSummary:
    """Turn the checked text of `transcript_ids` into the dataset `name` (replacing one of the
    same name) inside `folder` (default: `corrections/` beside the store), for tuning `model`
    (a Hub id or folder, whose `vocab` tells which characters are new)."""
    from engine.atomic import atomic_folder

    if not _NAME.match(name):
        raise CorrectionsError("dataset.bad_name", name=name)
    clips = collect_clips(store, transcript_ids, options)
    if not clips:
        raise CorrectionsError("dataset.nothing_checked")
    known = set(vocab)
    chars = dict.fromkeys(c for clip in clips for c in clip.text)
    new_chars = tuple(c for c in chars if known and c not in known)
    fixes, accepted = _count_decisions(store, transcript_ids)
    target = (folder or store.path.parent / "corrections") / name
    summary = CorrectionSummary(
        name=name,
        folder=target,
        manifest=target / "manifest.tsv",
        config=target / "tune.yaml",
        examples=len(clips),
        seconds=sum(c.end - c.start for c in clips),
        corrections=fixes,
        accepted=accepted,
        new_chars=new_chars,
        transcripts=tuple(dict.fromkeys(transcript_ids)),
    )
    record = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(summary).items()}
    model_ref = str(Path(model).resolve()) if Path(model).exists() else model
    try:
        atomic_folder(target, lambda tmp: _write_folder(tmp, clips, record, model_ref, name))
    except OSError as e:
        raise CorrectionsError("dataset.write_failed", path=target, detail=e) from e
    store.add_correction_set(name, summary.transcripts, target, record)
    log.info("dataset %s: %d clips, %.1f s", target, len(clips), summary.seconds)
    return summary
