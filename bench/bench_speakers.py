"""Diarization error rate of engine.speakers on conversations built from real voices.

    .venv/bin/python bench/bench_speakers.py [--split test|dev] [--count 15] [--seed 0]
        [--threshold T] [--window S] [--hop S] [--min-turn S] [--sweep T1,T2,...]

Conversations are built (seeded) from the real Mandarin clips of ../shared/audio: 2-4
different voices take turns, each turn one or two of a voice's utterances (its clips cut at
their own pauses), with pauses of 0.2-1.2 s between turns and about one change in six
overlapping the previous turn by 0.3-0.8 s. Every clip is brought to the same speech level
(±3 dB at random per voice) and a common noise floor is added, so loudness alone does not tell
voices apart. The reference says who speaks when from the clips' own energy (20 ms frames
within 45 dB of the clip's loudest, gaps under 0.3 s bridged), not from the VAD the system
uses.

Clips that may hold the same voice count as one voice (AISHELL-1 speaker S0764's two
utterances; the FunASR demo's wav, its mp3 copy left out; the four Step-Audio-EditX prompts,
whose speakers are not stated), and the two-speaker MOSS-TTSD excerpt is left out (who speaks
when in it is not annotated): 15 voices. They are split (seeded) into development voices, on
which the defaults of engine.speakers.SpeakerOptions were chosen (`--split dev --sweep`), and
test voices, which the reported figure uses: no test voice was heard while tuning. Both are
real recordings from different sources, so each voice also brings its own room and
microphone; a meeting recorded on one microphone is harder than these.

DER is pyannote.metrics' DiarizationErrorRate (missed speech + false alarm + confusion over
the reference speech, with the optimal mapping of found to true speakers), over all
conversations together, with no forgiveness collar and overlaps scored (the strict setting);
each line also shows it with the customary 0.25 s collar. The number of speakers is found
automatically (the default); each line also shows DER when it is given. DER hides a voice
split in two (its smaller part costs little), so the number of speakers found is scored too:
the conversations where it differs from the true number, and how many of those found too many.
The last lines:

    speaker count wrong: W of N conversations (M too many)
    DER: X %  (N conversations, 2-4 speakers)
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.audio import SAMPLE_RATE, load_audio  # noqa: E402
from engine.cli import positive_int  # noqa: E402
from engine.speakers import SpeakerOptions, Turn, diarize  # noqa: E402

AUDIO = ROOT.parent / "shared" / "audio"

# Clips that may be one voice share a name; None leaves a clip out.
VOICES = {
    "aishell1_BAC009S0764W0121.wav": "aishell-S0764",
    "aishell1_BAC009S0764W0122.wav": "aishell-S0764",
    "aishell1_BAC009S0724W0121.wav": "aishell-S0724",
    "funasr_asr_example_zh.wav": "funasr-demo",
    "funasr_asr_example_zh.mp3": None,  # the same recording as the wav
    "funasr_llamacpp_sample.wav": "funasr-llamacpp",
    "fireredasr2s_hello_zh.wav": "fireredasr2s",
    "yeyupiaoling_test.wav": "yeyupiaoling",
    "cosyvoice_zero_shot_prompt.wav": "cosyvoice",
    "sparktts_prompt_audio.wav": "sparktts",
    # may be the podcast's two hosts again (a female and a male voice, as pod_f and pod_m)
    "mossttsd_zh_spk1_moon.wav": None,
    "mossttsd_zh_spk2_moon.wav": None,
    "mossttsd_pod_f_enhanced.wav": "mossttsd-pod-f",
    "mossttsd_pod_m_enhanced.wav": "mossttsd-pod-m",
    "mossttsd_single_reference.wav": None,  # two voices, not annotated
    "fireredtts2_zh_S1.flac": "fireredtts2-S1",
    "fireredtts2_zh_S2.flac": "fireredtts2-S2",
    "soulxpodcast_female_mandarin.wav": "soulx-female",
    "soulxpodcast_male_mandarin.wav": "soulx-male",
    "stepaudioeditx_fear_zh_female_prompt.wav": "stepaudioeditx-f",
    # speakers not stated: one or several male voices, whispered, sped up, acted
    "stepaudioeditx_paralingustic_prompt.wav": None,
    "stepaudioeditx_speed_prompt.wav": None,
    "stepaudioeditx_whisper_prompt.wav": None,
}
SPLIT_SEED = 17
SPEECH_DBFS = -26.0  # every clip's speech level before the per-voice jitter
NOISE_DBFS = -60.0  # the common noise floor
REFERENCE_RANGE_DB = 45.0  # reference speech: frames within this much of a clip's loudest
_FRAME = 320  # 20 ms energy frames for the reference


@dataclass(frozen=True)
class Scores:
    """What `score` measured over a set of conversations."""

    strict: float  # DER, no collar, overlaps scored
    collar: float  # DER with a 0.25 s collar
    given: float  # DER with the number of speakers given
    wrong_count: int  # conversations whose number of speakers found is not the true one
    too_many: int  # of those, the ones where more were found
    conversations: int


@dataclass(frozen=True)
class Utterance:
    voice: str
    audio: np.ndarray  # 16 kHz, trimmed to its speech
    speech: tuple[tuple[float, float], ...]  # (start, end) within `audio`, seconds


@dataclass(frozen=True)
class Conversation:
    name: str
    audio: np.ndarray
    reference: tuple[Turn, ...]  # speech of each voice; speaker = index into voices
    voices: tuple[str, ...]


def energy_speech(audio: np.ndarray, above_noise_db: float = 10.0, bridge: float = 0.3):
    """(start, end) seconds of the 20 ms frames louder than the clip's noise floor (its 5th
    percentile frame) by above_noise_db, and within REFERENCE_RANGE_DB of its loudest; gaps
    shorter than `bridge` joined, stretches under 0.1 s dropped."""
    n = len(audio) // _FRAME
    frames = audio[: n * _FRAME].reshape(n, _FRAME)
    db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    active = db > max(np.percentile(db, 5) + above_noise_db, db.max() - REFERENCE_RANGE_DB)
    spans: list[list[float]] = []
    for i in np.flatnonzero(active):
        start, end = i * _FRAME / SAMPLE_RATE, (i + 1) * _FRAME / SAMPLE_RATE
        if spans and start - spans[-1][1] < bridge:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    return [(a, b) for a, b in spans if b - a >= 0.1]


def _level(audio: np.ndarray, speech, target_db: float) -> np.ndarray:
    parts = [audio[round(a * SAMPLE_RATE) : round(b * SAMPLE_RATE)] for a, b in speech]
    rms = np.sqrt(np.mean(np.concatenate(parts).astype(np.float64) ** 2))
    return (audio * (10 ** (target_db / 20) / max(rms, 1e-6))).astype(np.float32)


def utterances(path: Path, voice: str, cut_pause: float = 0.35) -> list[Utterance]:
    """A clip cut at its pauses of at least cut_pause seconds into utterances."""
    audio = load_audio(path)
    speech = energy_speech(audio)
    audio = _level(audio, speech, SPEECH_DBFS)
    groups: list[list[tuple[float, float]]] = []
    for span in speech:
        if groups and span[0] - groups[-1][-1][1] < cut_pause:
            groups[-1].append(span)
        else:
            groups.append([span])
    out = []
    for g in groups:
        first, last = g[0][0], g[-1][1]
        piece = audio[round(first * SAMPLE_RATE) : round(last * SAMPLE_RATE)]
        out.append(Utterance(voice, piece, tuple((a - first, b - first) for a, b in g)))
    return out


def load_voices(audio_dir: Path = AUDIO) -> dict[str, list[Utterance]]:
    with open(audio_dir / "manifest.tsv", encoding="utf-8") as f:
        files = [row["file"] for row in csv.DictReader(f, delimiter="\t")]
    voices: dict[str, list[Utterance]] = {}
    for name in files:
        voice = VOICES.get(name)
        if voice is not None:
            voices.setdefault(voice, []).extend(utterances(audio_dir / name, voice))
    return voices


def split_voices(voices: dict[str, list[Utterance]]) -> tuple[list[str], list[str]]:
    """(development voices, test voices): the voices in order of how much they say, taken
    in pairs, one of each pair (seeded) to each side, so both sides hold long and short
    voices alike; the odd one out is a test voice."""

    def speech(v: str) -> float:
        return sum(b - a for u in voices[v] for a, b in u.speech)

    order = sorted(voices, key=speech)
    rng = random.Random(SPLIT_SEED)
    dev, test = [], []
    for i in range(0, len(order) - 1, 2):
        pair = order[i : i + 2]
        rng.shuffle(pair)
        dev.append(pair[0])
        test.append(pair[1])
    test += order[len(order) - len(order) % 2 :]
    return sorted(dev), sorted(test)


def build(
    voices: dict[str, list[Utterance]], names: list[str], rng: random.Random, name: str
) -> Conversation:
    """Voices `names` take turns until their utterances run out (see the module docstring)."""
    queues = {v: list(voices[v]) for v in names}
    for q in queues.values():
        rng.shuffle(q)
    gains = {v: 10 ** (rng.uniform(-3, 3) / 20) for v in names}
    placed: list[tuple[float, Utterance]] = []
    t, last = 0.5, None
    while any(queues.values()):
        choices = [v for v in names if queues[v] and v != last] or [v for v in names if queues[v]]
        voice = rng.choice(choices)
        if placed:
            if voice != last and rng.random() < 1 / 6:
                t -= rng.uniform(0.3, 0.8)  # overlaps the end of the previous turn
            else:
                t += rng.uniform(0.2, 1.2)
        for k in range(rng.choice((1, 2))):
            if not queues[voice]:
                break
            utt = queues[voice].pop()
            if k:
                t += rng.uniform(0.15, 0.5)  # the same voice, a breath later
            placed.append((t, replace(utt, audio=utt.audio * gains[voice])))
            t += len(utt.audio) / SAMPLE_RATE
        last = voice
    noise = np.random.default_rng(rng.randrange(2**32))
    length = round((t + 0.5) * SAMPLE_RATE)
    audio = noise.normal(0, 10 ** (NOISE_DBFS / 20), length).astype(np.float32)
    reference = []
    for start, utt in placed:
        first = round(start * SAMPLE_RATE)
        audio[first : first + len(utt.audio)] += utt.audio
        speaker = names.index(utt.voice)
        reference += [Turn(start + a, start + b, speaker) for a, b in utt.speech]
    return Conversation(name, audio, tuple(sorted(reference, key=lambda r: r.start)), tuple(names))


def conversations(
    voices: dict[str, list[Utterance]], pool: list[str], count: int, seed: int
) -> list[Conversation]:
    """count conversations of 2, 3 and 4 voices in turn, drawn from pool."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        k = 2 + i % 3
        names = rng.sample(pool, k)
        out.append(build(voices, names, rng, f"conv{i:02d}-{k}spk"))
    return out


def annotation(turns, uri: str):
    from pyannote.core import Annotation, Segment

    a = Annotation(uri=uri)
    for i, t in enumerate(turns):
        a[Segment(t.start, t.end), i] = f"S{t.speaker}"
    return a


def score(convs: list[Conversation], options: SpeakerOptions, verbose: bool = True) -> Scores:
    """DER three ways, and how often the number of speakers found is wrong."""
    from pyannote.metrics.diarization import DiarizationErrorRate

    strict, collar, given = (
        DiarizationErrorRate(collar=0.0, skip_overlap=False),
        DiarizationErrorRate(collar=0.25, skip_overlap=False),
        DiarizationErrorRate(collar=0.0, skip_overlap=False),
    )
    from pyannote.core import Segment, Timeline

    wrong = too_many = 0
    for conv in convs:
        uem = Timeline([Segment(0, len(conv.audio) / SAMPLE_RATE)])
        ref = annotation(conv.reference, conv.name)
        turns = diarize(conv.audio, options)
        hyp = annotation(turns, conv.name)
        known = diarize(conv.audio, replace(options, speakers=len(conv.voices)))
        d = strict(ref, hyp, uem=uem)
        c = collar(ref, hyp, uem=uem)
        g = given(ref, annotation(known, conv.name), uem=uem)
        found = len({t.speaker for t in turns})
        wrong += found != len(conv.voices)
        too_many += found > len(conv.voices)
        if verbose:
            print(
                f"{conv.name}  {len(conv.audio) / SAMPLE_RATE:5.1f} s  "
                f"speakers {len(conv.voices)} found {found}  DER {100 * d:5.1f} %  "
                f"(collar 0.25 s: {100 * c:5.1f} %; speakers given: {100 * g:5.1f} %)",
                flush=True,
            )
    return Scores(abs(strict), abs(collar), abs(given), wrong, too_many, len(convs))


def count_line(scores: Scores) -> str:
    """How often the number of speakers found was wrong: DER hides over-splitting."""
    return (
        f"speaker count wrong: {scores.wrong_count} of {scores.conversations} conversations "
        f"({scores.too_many} too many)"
    )


def speaker_threshold(text: str) -> float:
    """An argparse type: a clustering threshold, refused as `SpeakerOptions` refuses it."""
    try:
        return SpeakerOptions(threshold=float(text)).threshold
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: a cosine distance in (0, 2)") from e


def speaker_thresholds(text: str) -> list[float]:
    """An argparse type for --sweep: comma-separated thresholds, each one `speaker_threshold`."""
    return [speaker_threshold(part.strip()) for part in text.split(",")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--split", choices=("test", "dev"), default="test")
    p.add_argument("--count", type=positive_int, default=30, help="conversations (default 30)")
    p.add_argument("--seed", type=int, default=None, help="default: 0 (test), 1000 (dev)")
    p.add_argument("--threshold", type=speaker_threshold, default=None)
    p.add_argument("--window", type=float, default=None, help="embedding window, seconds")
    p.add_argument("--hop", type=float, default=None, help="step between windows, seconds")
    p.add_argument("--min-turn", type=float, default=None, help="shortest turn, seconds")
    p.add_argument(
        "--sweep", type=speaker_thresholds, help="thresholds to compare (comma-separated)"
    )
    args = p.parse_args(argv)
    overrides = {
        "threshold": args.threshold,
        "window_seconds": args.window,
        "hop_seconds": args.hop,
        "min_turn_seconds": args.min_turn,
    }
    try:
        args.options = SpeakerOptions(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as e:  # --window, --hop and --min-turn, checked together
        p.error(f"--window / --hop / --min-turn: {e}")
    return args


def main() -> None:
    args = parse_args()
    options = args.options
    voices = load_voices()
    dev, test = split_voices(voices)
    pool = dev if args.split == "dev" else test
    seed = args.seed if args.seed is not None else (1000 if args.split == "dev" else 0)
    convs = conversations(voices, pool, args.count, seed)
    minutes = sum(len(c.audio) for c in convs) / SAMPLE_RATE / 60
    print(f"{args.split} voices: {', '.join(pool)}")
    print(f"{len(convs)} conversations, {minutes:.1f} min; {options}")
    if args.sweep:
        for value in args.sweep:
            s = score(convs, replace(options, threshold=value), verbose=False)
            print(
                f"threshold {value:.3f}: DER {100 * s.strict:5.1f} %  "
                f"(collar 0.25 s: {100 * s.collar:5.1f} %); {count_line(s)}"
            )
        return
    began = time.perf_counter()
    scores = score(convs, options)
    seconds = time.perf_counter() - began
    print(
        f"collar 0.25 s: {100 * scores.collar:.1f} %; "
        f"number of speakers given: {100 * scores.given:.1f} %"
    )
    print(f"diarized {minutes:.1f} min twice in {seconds:.0f} s")
    print(count_line(scores))
    print(f"DER: {100 * scores.strict:.1f} %  ({len(convs)} conversations, 2-4 speakers)")


if __name__ == "__main__":
    main()
