"""Accuracy with the silence of pauses skipped and with every sample decoded, in one run.

Both settings of `TranscribeOptions.skip_silence` on the same audio, nothing else changed:

    .venv/bin/python bench/bench_silence.py                  # the demo model (CTC), with its LM
    .venv/bin/python bench/bench_silence.py --whisper        # Whisper-base on the shared clips

CTC (--model, default the demo model; fp32 on the CPU, through `Transcriber.transcribe` as a
file is read): each setting decodes with the model's LM and greedily, on two sets of the demo
model's held-out general sentences (resources/corpus/general/heldout.txt, held out from its
training but written from the same templates, so not independent of it: what is compared is the
two settings on the same audio), synthesized (seeded) once into --work and reused:

- pauses (--sets): all 200 as passages of 3-5 sentences with 0.5-1.5 s pauses between them
  and 0.5-1.5 s around, clean (digital silence, no noise or room), seed 30;
- accuracy: the same sentences as bench_accuracy.py voices its passages (3-5 sentences, its
  default 0.2-0.8 s pauses, 0.5-1.5 s of silence around, its noise and rooms, seed 14; the same
  folder under --work, so its audio is shared with that bench's).

Whisper (--whisper; .cache/models/whisper-base, float32): the clips of ../shared/audio joined
into one file, 6 s of digital silence first and 4 s of near-silence (N(0, 0.001), seed 0; other
lengths and levels with --gap-seconds and --gap-noise) after each clip, scored as one text
against their text_for_scoring joined; the filter it turns on is faster-whisper's silero one
(engine.whisper). The clips are public test sets' and projects' demos; Whisper's training data
are not published, so independence cannot be checked.

Prints per set and setting the CER with its errors (deletions beside) and the wall time; the
last line compares the two settings.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bench_accuracy import positive_number

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HELDOUT = ROOT / "resources" / "corpus" / "general" / "heldout.txt"
MANIFEST = ROOT.parent / "shared" / "audio" / "manifest.tsv"
WHISPER_BASE_DIR = ROOT / ".cache" / "models" / "whisper-base"
SAMPLE_RATE = 16_000
# The joined Whisper file: silence first, then near-silence after each clip (seconds, level).
LEAD_SECONDS, GAP_SECONDS, GAP_NOISE = 6.0, 4.0, 0.001
SETTINGS = (("every sample", False), ("silence skipped", True))


@dataclass(frozen=True, slots=True)
class Clip:
    """One recording of a set: its audio (16 kHz mono) and the text it says."""

    audio: np.ndarray
    text: str


def joined_clips(clips: list[Clip], lead: float, gap: float, noise: float, seed: int = 0) -> Clip:
    """The clips as one recording: `lead` s of digital silence first, then each clip followed by
    `gap` s of Gaussian near-silence of standard deviation `noise` (seeded); the texts joined.
    E.g. clips of 1 s and 2 s with lead 6, gap 4 make 6 + 1 + 4 + 2 + 4 = 17 s."""
    rng = np.random.default_rng(seed)
    pieces = [np.zeros(round(lead * SAMPLE_RATE), np.float32)]
    for clip in clips:
        filler = rng.normal(0.0, noise, round(gap * SAMPLE_RATE)).astype(np.float32)
        pieces += [np.asarray(clip.audio, np.float32), filler]
    return Clip(np.concatenate(pieces), "".join(c.text for c in clips))


def comparison(name: str, before, after) -> str:
    """One line comparing two CerResults of the same audio (every sample, then skipping), e.g.
    `pauses, greedy: 3.51% (70 errors) -> 3.41% (68 errors) of 1993 characters`."""
    return (
        f"{name}: {before.cer:.2%} ({before.errors} errors) -> {after.cer:.2%} "
        f"({after.errors} errors) of {before.reference_chars} characters"
    )


def manifest_clips(manifest: Path) -> list[Clip]:
    """Every clip of a manifest (file and text_for_scoring columns) read at 16 kHz."""
    from engine.audio import load_audio

    with open(manifest, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [Clip(load_audio(manifest.parent / r["file"]), r["text_for_scoring"]) for r in rows]


# The CTC sets of the module docstring: (folder under --work, seed, SynthOptions fields).
SETS = {
    "pauses": (
        ".",
        30,
        {
            "sentences_range": (3, 5),
            "pause_range": (0.5, 1.5),
            "silence_range": (0.5, 1.5),
            "snr_choices": (None,),
            "reverb_probability": 0.0,
        },
    ),
    "accuracy": ("passages", 14, {"sentences_range": (3, 5), "silence_range": (0.5, 1.5)}),
}


def synthesized_set(work: Path, name: str) -> list[Clip]:
    """The CTC set `name` (SETS), voiced into `work` once."""
    from bench_accuracy import manifest_rows, synth_text

    from engine.audio import load_audio

    folder, seed, voicing = SETS[name]
    manifest = synth_text(HELDOUT, work / folder, 1, seed, **voicing)
    return [Clip(load_audio(path), text) for path, text in manifest_rows(manifest)]


def score(transcriber, clips: list[Clip], options):
    """(CerResult, wall seconds) of `transcriber` on every clip with `options`."""
    from engine.metrics import cer
    from engine.normalize import normalize_text
    from engine.results import Segment

    began, texts = time.perf_counter(), []
    for clip in clips:
        items, _ = transcriber.transcribe(clip.audio, options)
        texts.append("".join(s.text for s in items if isinstance(s, Segment)))
    wall = time.perf_counter() - began
    refs = [normalize_text(c.text) for c in clips]
    return cer(refs, [normalize_text(t) for t in texts]), wall


def compare(transcriber, name: str, clips: list[Clip], decoder: str, label: str) -> None:
    """Both settings on `clips` with `decoder` (TranscribeOptions.decoder; `label` says what it
    is), each line as it is measured, then the comparison."""
    from engine.transcribe import TranscribeOptions

    seconds = sum(len(c.audio) for c in clips) / SAMPLE_RATE
    results = []
    for setting, skip in SETTINGS:
        options = TranscribeOptions(skip_silence=skip, decoder=decoder)
        result, wall = score(transcriber, clips, options)
        results.append(result)
        print(f"  {name} ({len(clips)} recordings, {seconds:.0f} s), {label}, {setting}: CER "
              f"{result.cer:.2%}, {result.errors} errors ({result.deletions} deleted) of "
              f"{result.reference_chars}, {wall:.1f} s", flush=True)  # fmt: skip
    print(comparison(f"{name}, {label}", *results), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, the model and the clips checked before any audio is made."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="CTC model folder (default: the demo model)")
    parser.add_argument(
        "--whisper", action="store_true", help="Whisper-base on the shared clips joined instead"
    )
    parser.add_argument("--data", type=Path, default=MANIFEST, help="the clips' manifest.tsv")
    parser.add_argument("--work", type=Path, default=ROOT / "out" / "bench-accuracy")
    parser.add_argument(
        "--gap-seconds",
        type=positive_number,
        default=GAP_SECONDS,
        help="--whisper: near-silence after each clip, seconds",
    )
    parser.add_argument(
        "--gap-noise",
        type=float,
        default=GAP_NOISE,
        help="--whisper: the near-silence's standard deviation (0: digital silence; speech "
        "peaks near 0.3)",
    )
    parser.add_argument(
        "--sets",
        type=lambda text: text.split(","),
        default=list(SETS),
        help=f"CTC sets, comma-separated, of {', '.join(SETS)} (default: all)",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.sets if name not in SETS]
    if unknown:
        parser.error(f"argument --sets: {', '.join(unknown)}: give {', '.join(SETS)}")
    default = WHISPER_BASE_DIR if args.whisper else ROOT / "resources" / "demo-model"
    args.model = args.model or default
    if not (args.model / "config.json").is_file():
        parser.error(f"argument --model: {args.model} holds no model (config.json); give a "
                     "model folder")  # fmt: skip
    if not 0 <= args.gap_noise < 1:
        parser.error(f"argument --gap-noise: {args.gap_noise}: give a level from 0 to below 1")
    if args.whisper and not args.data.is_file():
        parser.error(f"argument --data: {args.data}: no such manifest; give a manifest.tsv "
                     f"with file and text_for_scoring columns (default: {MANIFEST})")  # fmt: skip
    return args


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parse_args(argv)
    os.environ.setdefault("TINGXIE_LM_CACHE", str(args.work / "lm-cache"))
    from engine.loader import load_model, transcriber_for
    from engine.model import LoadOptions

    options = LoadOptions(device="cpu", precision="fp32")
    transcriber = transcriber_for(load_model(args.model, options))
    print(f"model {args.model}, fp32 on the CPU, {len(os.sched_getaffinity(0))} cores")
    if args.whisper:
        clips = manifest_clips(args.data)
        joined = joined_clips(clips, LEAD_SECONDS, args.gap_seconds, args.gap_noise)
        name = f"clips joined by {args.gap_seconds:g} s of noise at {args.gap_noise:g}"
        compare(transcriber, name, [joined], "auto", "beam 5")
        return 0
    for name in args.sets:
        clips = synthesized_set(args.work, name)
        for decoder, label in (("auto", "with the model's LM"), ("greedy", "greedy")):
            compare(transcriber, name, clips, decoder, label)
    return 0


if __name__ == "__main__":
    sys.exit(main())
