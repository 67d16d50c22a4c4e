"""Verified review decisions → a named tuning dataset, and the hand-off to `tingxie-cli tune`.

The dataset is a folder the tuning engine imports as it is (`engine.data.load_dataset`):
`clips/*.wav` cut from the recordings, `manifest.tsv` (path, text), `summary.json`, and a
`tune.yaml` config for `tingxie-cli tune`. It is written into a temporary folder and swapped
in whole, so a crash or a full disk never leaves half a dataset.

Clips are cut only from the recording the transcript was made from: a file that changed since
(another sha256, or shorter than it was) stops the build, since its text would label other
sound; so does one that is gone, unless the caller asks to build from the others. Audio heard
once is used once: a transcript listed twice counts once, and where two transcripts of one
recording (transcribed again, say after a model switch) both checked the same stretch, the
newer transcript's check is kept. Checked text is never given up for text nobody checked: a
segment's clip whole goes in only where no other transcript's check lies under it.

A label holds checked text only: a segment goes in whole only when every character in it was
checked or the model was sure of it (at or above the review threshold); one still holding a
doubtful character nobody checked gives only its checked stretches.
"""

from __future__ import annotations

import errno
import json
import logging
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from itertools import groupby
from pathlib import Path
from typing import Literal

from engine.errors import TingxieError
from engine.normalize import normalize_text

from .review import (
    DEFAULT_THRESHOLD,
    CheckedStretch,
    EditKind,
    apply_edits,
    checked_stretches,
    trusted_chars,
)
from .store import Store, StoreError, sha256_file

__all__ = [
    "Clip",
    "CorrectionOptions",
    "CorrectionSummary",
    "CorrectionsError",
    "build_dataset",
    "check_name",
    "collect_clips",
    "dataset_folder",
    "existing_set",
    "name_in_use",
]

log = logging.getLogger("tingxie.corrections")

Scope = Literal["segment", "span"]
# A folder name of its own: never "." or "..", which would name corrections/ or its parent.
_NAME = re.compile(r"^\w[\w.-]*$")
# A recording this much shorter than when it was transcribed has changed (probe reads the same
# header it read then, so an unchanged file measures the same).
_DURATION_SLACK = 0.02


class CorrectionsError(TingxieError, ValueError):
    """No dataset can be made (nothing verified, bad name, unreadable recording)."""


@dataclass(frozen=True, slots=True)
class CorrectionOptions:
    """What becomes a training example."""

    # "segment": every segment holding a checked span, whole, with its edited text (CTC learns
    # best from full utterances), where nothing in it is doubtful and unchecked (else only its
    # checked spans); "span": only the checked spans themselves.
    scope: Scope = "segment"
    # Shorter clips are left out (the tuning engine skips them as too short anyway).
    min_seconds: float = 0.3
    # The review's doubt threshold: a character below it that nobody checked is no label.
    threshold: float = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        if self.scope not in Scope.__args__:
            raise ValueError(f"scope={self.scope!r}: choose one of {', '.join(Scope.__args__)}")
        if self.min_seconds < 0:
            raise ValueError(f"min_seconds={self.min_seconds}: must be 0 or more")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold={self.threshold}: choose a value between 0 and 1")


@dataclass(frozen=True, slots=True)
class Clip:
    """One training example: seconds [start, end] of a recording and its checked text."""

    audio: Path
    start: float
    end: float
    text: str
    transcript: int
    kinds: tuple[EditKind, ...] = ()  # the decisions its text holds (a deletion is a "fix")


@dataclass(frozen=True, slots=True)
class _Decided:
    """A segment with heard decisions in effect, before transcripts of one recording are
    weighed against each other."""

    transcript: int
    audio: Path
    whole: Clip | None  # the segment whole, when every character in it is a fit label
    stretches: tuple[CheckedStretch, ...]
    doubtful: bool  # kept from going in whole by a doubtful character nobody checked


@dataclass(frozen=True, slots=True)
class _Found:
    """The clips `_once_per_audio` keeps, and the segments their doubt cut or left out."""

    clips: list[Clip]
    trimmed: int
    skipped: int


@dataclass(frozen=True, slots=True)
class CorrectionSummary:
    """What the dataset holds, and how to tune on it."""

    name: str
    folder: Path
    manifest: Path
    config: Path
    examples: int
    seconds: float
    corrections: int  # fixes, deletions and picked alternatives the clips hold
    accepted: int  # spans accepted as they were, that the clips hold
    new_chars: tuple[str, ...]  # characters the model's vocabulary lacks, once normalized
    transcripts: tuple[int, ...]
    # (transcript, recording) of checked transcripts left out because the recording is gone
    left_out: tuple[tuple[int, str], ...] = ()
    # Segments holding doubtful text nobody checked, so not in the set whole: cut to their
    # checked stretches (trimmed), or left out, none of those being long enough (skipped).
    trimmed: int = 0
    skipped: int = 0

    @property
    def hours(self) -> float:
        return self.seconds / 3600

    @property
    def command(self) -> str:
        """The CLI hand-off that tunes the model on this dataset, quoted for a shell (unquoted,
        a folder with a space in its name was split in two)."""
        return f"tingxie-cli tune {shlex.quote(str(self.config))}"


def collect_clips(
    store: Store, transcript_ids: Iterable[int], options: CorrectionOptions | None = None
) -> list[Clip]:
    """The checked clips of the transcripts, in transcript and time order, each transcript
    once. Where transcripts of the same recording (same sha256, else same file) checked the
    same audio, the newest transcript's (highest id) check is kept."""
    options = options or CorrectionOptions()
    return _once_per_audio(store, _found_segments(store, transcript_ids, options), options).clips


def _found_segments(
    store: Store, transcript_ids: Iterable[int], options: CorrectionOptions
) -> dict[int, list[_Decided]]:
    """Each transcript's decided segments, by transcript (each once, in the order given)."""
    return {tid: _transcript_segments(store, tid, options) for tid in dict.fromkeys(transcript_ids)}


def _usable_clips(
    store: Store,
    transcript_ids: Iterable[int],
    options: CorrectionOptions,
    skip_missing: bool,
) -> tuple[_Found, dict[int, Path]]:
    """`collect_clips` without the transcripts whose recording is gone (deleted or moved), and
    those transcripts' recordings. They are dropped before the newest-transcript rule, so an
    older transcript's clips of the same audio stand in. Without `skip_missing` the first of
    them stops the build, as it does with it when no other transcript has clips."""
    found = _found_segments(store, transcript_ids, options)
    lost = {t: d[0].audio for t, d in found.items() if d and not d[0].audio.is_file()}
    left = {t: d for t, d in found.items() if t not in lost}
    if lost and (not skip_missing or not any(left.values())):
        tid = next(iter(lost))
        raise CorrectionsError("dataset.recording_missing", transcript=tid, path=lost[tid])
    return _once_per_audio(store, left, options), lost


def _transcript_segments(store: Store, tid: int, options: CorrectionOptions) -> list[_Decided]:
    """The segments of `tid` with heard decisions in effect, each with its clip whole where
    every character in it is a fit label (segment scope)."""
    audio = store.audio_path(tid)
    original = store.original(tid)
    ops, head = store.chain(tid)
    stretches = checked_stretches(original, ops[:head])
    if stretches and audio is None:
        raise CorrectionsError("dataset.no_recording", transcript=tid)
    edited = apply_edits(original, ops[:head])
    trusted = trusted_chars(original, ops[:head], options.threshold)
    decided = []
    for si, group in groupby(stretches, key=lambda f: f.segment):
        group = tuple(group)
        seg = edited[si]
        doubtful = options.scope == "segment" and not all(trusted[si])
        whole = None
        if options.scope == "segment" and not doubtful and seg.text:
            whole = Clip(audio, seg.start, seg.end, seg.text, tid, tuple(f.kind for f in group))
        decided.append(_Decided(tid, audio, whole, group, doubtful))
    return decided


def _once_per_audio(
    store: Store, found: dict[int, list[_Decided]], options: CorrectionOptions
) -> _Found:
    """The clips of `found`'s segments (by transcript, in its order), each stretch of audio
    once. Where transcripts of one recording checked the same audio, the newest one's check
    stands; a segment goes in whole only where all its checks stand and no other
    transcript's check lies under it (its unchecked text would replace checked text), and
    where no newer transcript's whole segment covers the same audio; otherwise only its
    standing checked stretches go in."""
    with_any = [tid for tid, decided in found.items() if decided]
    sha = {tid: store.recording(tid)[1] for tid in with_any}

    def same_recording(a: int, b: int) -> bool:
        if sha[a] and sha[b]:
            return sha[a] == sha[b]
        return found[a][0].audio == found[b][0].audio

    kin = {t: [o for o in with_any if o != t and same_recording(t, o)] for t in with_any}
    checks = {t: [f for d in found[t] for f in d.stretches] for t in with_any}
    standing = {
        t: {
            f
            for f in checks[t]
            if not any(_overlap(f.lo, f.hi, n.lo, n.hi) for o in kin[t] if o > t for n in checks[o])
        }
        for t in with_any
    }

    def whole(d: _Decided) -> Clip | None:
        w = d.whole
        if w is None or any(f not in standing[d.transcript] for f in d.stretches):
            return None
        others = (f for o in kin[d.transcript] for f in standing[o])
        return None if any(_overlap(w.start, w.end, f.lo, f.hi) for f in others) else w

    wholes = {t: [whole(d) for d in found[t]] for t in with_any}
    clips, trimmed, skipped = [], 0, 0
    for t in with_any:
        newer = [w for o in kin[t] if o > t for w in wholes[o] if w is not None]
        for d, w in zip(found[t], wholes[t], strict=True):
            if w is not None and not any(_overlap(w.start, w.end, n.start, n.end) for n in newer):
                got = [w]
            else:
                got = [
                    Clip(d.audio, f.pair.start, f.pair.end, f.pair.text, t, (f.kind,))
                    for f in d.stretches
                    if f.pair is not None and f in standing[t]
                ]
            got = [c for c in got if c.end - c.start >= options.min_seconds]
            if d.doubtful:
                trimmed += bool(got)
                skipped += not got
            clips += got
    if trimmed or skipped:
        log.info(
            "%d segment(s) cut to their checked text, %d left out: doubtful text nobody checked",
            trimmed,
            skipped,
        )
    return _Found(clips, trimmed, skipped)


def _overlap(a_start: float, a_end: float, b_start: float, b_end: float) -> bool:
    return a_start < b_end and b_start < a_end


def _check_recordings(store: Store, clips: Sequence[Clip]) -> dict[int, float]:
    """Stop when a recording is no longer the one its transcript was made from. Returns, for
    each transcript whose file could not be checked by its sha256 (none was stored), the
    duration it had then: none of its clips may come out shorter than that allows."""
    unverified: dict[int, float] = {}
    digests: dict[Path, str | None] = {}
    for tid, audio in dict.fromkeys((c.transcript, c.audio) for c in clips):
        _, sha, duration = store.recording(tid)
        if sha:
            if audio not in digests:
                try:
                    digests[audio] = sha256_file(audio)
                except OSError:  # missing or unreadable: cutting its clips says why
                    digests[audio] = None
            if digests[audio] not in (None, sha):
                raise CorrectionsError("dataset.recording_changed", transcript=tid, path=audio)
        elif duration is not None:
            from engine.audio import AudioError, probe

            try:
                now = probe(audio).duration
            except (AudioError, OSError):
                now = None
            if now is not None and now < duration - _DURATION_SLACK:
                raise CorrectionsError("dataset.recording_changed", transcript=tid, path=audio)
            unverified[tid] = duration
    return unverified


def _cut(clip: Clip, duration: float | None):
    """The clip's samples. `duration`: what the recording lasted when it was transcribed, for
    a file its sha256 could not vouch for: audio ending before that (or before the clip when
    not known) means the file is shorter than its transcript."""
    from engine.audio import SAMPLE_RATE, AudioError, read_span

    def shorter(ends: float) -> CorrectionsError:
        return CorrectionsError(
            "dataset.recording_shorter",
            transcript=clip.transcript,
            path=clip.audio,
            duration=ends,
            end=clip.end,
        )

    try:
        samples = read_span(clip.audio, clip.start, clip.end)
    except AudioError as e:
        if e.code == "audio.span_after_end":
            raise shorter(e.params["duration"]) from e
        if e.code == "audio.missing":  # gone since `_usable_clips` looked
            raise CorrectionsError(
                "dataset.recording_missing", transcript=clip.transcript, path=clip.audio
            ) from e
        raise CorrectionsError("dataset.clip_failed", transcript=clip.transcript, error=e) from e
    except OSError as e:
        raise CorrectionsError("dataset.clip_failed", transcript=clip.transcript, error=e) from e
    if duration is not None:
        want = round(min(clip.end, duration) * SAMPLE_RATE) - round(clip.start * SAMPLE_RATE)
        if len(samples) < want - round(_DURATION_SLACK * SAMPLE_RATE):
            raise shorter(clip.start + len(samples) / SAMPLE_RATE)
    return samples


def _unwritten(name: str, target: Path, error: OSError) -> CorrectionsError:
    """Why the set's folder could not be written: freeing space is the way out of a full disk
    only; any other cause (a folder made read-only) is told as it is, naming its file."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return CorrectionsError("dataset.write_failed", path=target, detail=error)
    detail = error if error.filename else f"{target}: {error}"
    return CorrectionsError("dataset.failed", name=name, detail=detail)


def _write_folder(
    tmp: Path,
    clips: Sequence[Clip],
    summary: dict,
    model: str,
    name: str,
    durations: dict[int, float],
) -> None:
    from engine.atomic import atomic_write_text
    from engine.audio import write_wav
    from engine.tune.config import TuneConfig
    from engine.tune.data import manifest_text

    (tmp / "clips").mkdir()
    rows = []
    for i, clip in enumerate(clips):
        rel = f"clips/{i:05d}.wav"
        samples = _cut(clip, durations.get(clip.transcript))
        try:
            write_wav(tmp / rel, samples)
        except OSError as e:
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


def _record(store: Store, summary: CorrectionSummary, record: dict) -> None:
    """Record the written set in the library (linked to the transcripts it still holds). The
    folder is complete by then: a failure says so, and that building it again with replace
    records it."""
    try:
        store.add_correction_set(summary.name, summary.transcripts, summary.folder, record)
    except StoreError as e:
        raise CorrectionsError(
            "dataset.not_recorded", name=summary.name, path=summary.folder, detail=e
        ) from e


def dataset_folder(store: Store, name: str, folder: Path | None = None) -> Path:
    """Where `build_dataset` puts the dataset `name`."""
    return (folder or store.path.parent / "corrections") / name


def _is_set(folder: Path) -> bool:
    """Whether `folder` is a training set `build_dataset` wrote (it writes both files)."""
    return (folder / "manifest.tsv").is_file() and (folder / "summary.json").is_file()


def _check_free(target: Path, name: str) -> None:
    """Refuse to build `name` into `target` when something else is there: a set's tuned model
    (its tune.yaml writes `../<set>-tuned` beside it), or any folder or file of the user's.
    Only a training set or an empty folder is replaced."""
    if not target.exists() or _is_set(target):
        return
    found = sorted(p.name for p in target.iterdir()) if target.is_dir() else [target.name]
    if found:
        shown = ", ".join(found[:5]) + (", …" if len(found) > 5 else "")
        raise CorrectionsError("dataset.name_taken", name=name, path=target, found=shown)


def check_name(store: Store, name: str, folder: Path | None = None) -> None:
    """Raise CorrectionsError when no set can be built under `name`, whatever it would hold:
    a name that is no folder name of its own, or one whose folder holds something that is no
    training set (never replaced). A front end asks before it starts a build, so the user can
    change the name at once; `build_dataset` asks again. A set the build would replace is the
    caller's question (`name_in_use`)."""
    if not _NAME.match(name):
        raise CorrectionsError("dataset.bad_name", name=name)
    _check_free(dataset_folder(store, name, folder), name)


def existing_set(store: Store, name: str, folder: Path | None = None) -> Path | None:
    """Where the training set that building `name` would replace is (to name it when asking):
    the folder the store records under that name, else a training set of that name where it
    would go; None when there is neither (another folder there is no set, and
    `build_dataset` refuses to replace it)."""
    recorded = next((path for n, path, _ in store.correction_sets() if n == name), None)
    target = dataset_folder(store, name, folder)
    return recorded or (target if _is_set(target) else None)


def name_in_use(store: Store, name: str, folder: Path | None = None) -> bool:
    """Whether building `name` would replace a training set: one the store records under that
    name, or a training set of that name where it would go."""
    return existing_set(store, name, folder) is not None


def build_dataset(
    store: Store,
    transcript_ids: Sequence[int],
    name: str,
    *,
    model: str,
    vocab: Iterable[str] = (),
    folder: Path | None = None,
    options: CorrectionOptions | None = None,
    skip_missing: bool = False,
) -> CorrectionSummary:
    """Turn the checked text of `transcript_ids` into the dataset `name` (replacing one of the
    same name) inside `folder` (default: `corrections/` beside the store), for tuning `model`
    (a Hub id or folder, whose `vocab` tells which characters are new, judged after the
    normalization tuning applies). Ask first (`name_in_use`) before replacing a set. Raises
    CorrectionsError when a recording changed since it was transcribed, or is gone, or when
    the set's folder holds something that is no training set (never replaced); with
    `skip_missing` (every transcript of a library, none chosen), a transcript whose recording
    is gone is left out instead (`CorrectionSummary.left_out`) while others remain."""
    from engine.atomic import atomic_folder

    check_name(store, name, folder)
    transcript_ids = tuple(dict.fromkeys(transcript_ids))
    options = options or CorrectionOptions()
    found, lost = _usable_clips(store, transcript_ids, options, skip_missing)
    clips = found.clips
    if not clips and found.skipped:  # checked, but only within segments still in doubt
        raise CorrectionsError(
            "dataset.only_doubtful", segments=found.skipped, seconds=options.min_seconds
        )
    if not clips:
        raise CorrectionsError("dataset.nothing_checked")
    transcript_ids = tuple(t for t in transcript_ids if t not in lost)
    durations = _check_recordings(store, clips)
    known = set(vocab)
    chars = dict.fromkeys(c for clip in clips for c in normalize_text(clip.text))
    new_chars = tuple(c for c in chars if known and c not in known)
    kinds = [k for clip in clips for k in clip.kinds]
    target = dataset_folder(store, name, folder)
    summary = CorrectionSummary(
        name=name,
        folder=target,
        manifest=target / "manifest.tsv",
        config=target / "tune.yaml",
        examples=len(clips),
        seconds=sum(c.end - c.start for c in clips),
        corrections=sum(k != "accept" for k in kinds),
        accepted=kinds.count("accept"),
        new_chars=new_chars,
        transcripts=transcript_ids,
        left_out=tuple((t, str(path)) for t, path in lost.items()),
        trimmed=found.trimmed,
        skipped=found.skipped,
    )
    record = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(summary).items()}
    model_ref = str(Path(model).resolve()) if Path(model).exists() else model
    try:
        atomic_folder(
            target, lambda tmp: _write_folder(tmp, clips, record, model_ref, name, durations)
        )
    except OSError as e:
        raise _unwritten(name, target, e) from e
    _record(store, summary, record)
    log.info("dataset %s: %d clips, %.1f s", target, len(clips), summary.seconds)
    return summary
