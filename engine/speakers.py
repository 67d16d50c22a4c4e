"""Who spoke when: speaker turns for a finished recording, and speakers on its segments.

Stages, each testable alone: speech stretches (engine.vad.find_speech) → fixed-length windows
over them (`speech_windows`) → one voice embedding per window (a `SpeakerEmbedder`) →
clustering of the embeddings (`cluster_windows`: `cluster`, scikit-learn, the number of
speakers given or found by a distance threshold, over the windows of stretches long enough) → a
speaker for every stretch of speech (`turns_from_windows`) → a speaker on every segment of a
transcript, a segment split where the speaker changes inside it (`assign_speakers`). Only
`diarize` and the embedders touch a model; everything else is pure arithmetic on arrays and
records.

The embedder is pluggable (`register_embedder`). The one shipped is Resemblyzer's speaker
encoder (a GE2E d-vector LSTM, Apache-2.0), because its trained weights come inside its PyPI
wheel and so work offline from the install on; pyannote's embedding models are downloaded from
the Hugging Face Hub (gated behind a licence click), which an offline install cannot do. The
network is defined here and loads the wheel's `pretrained.pt` as plain tensors: importing the
`resemblyzer` package itself needs `webrtcvad`, whose last release imports `pkg_resources`,
which current setuptools no longer ships.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from .audio import SAMPLE_RATE
from .errors import TingxieError
from .extras import install_hint
from .punctuation import is_mark
from .results import Char, Segment

__all__ = [
    "EMBEDDERS",
    "MAX_WINDOWS",
    "MIN_CLUSTERED_SPEECH",
    "ResemblyzerEmbedder",
    "SpeakerEmbedder",
    "SpeakerOptions",
    "SpeakersUnavailable",
    "Turn",
    "assign_speakers",
    "cluster",
    "diarize",
    "ensure_available",
    "label_speakers",
    "load_embedder",
    "plan_windows",
    "register_embedder",
    "speech_windows",
    "turns_from_windows",
]

log = logging.getLogger("tingxie.speakers")

# Seconds of audio one label of `turns_from_windows` covers (the resolution of turn edges).
_FRAME_SECONDS = 0.02
# A stretch of speech shorter than this (seconds) is too little voice to found a speaker on:
# its window, mostly the silence or the neighbours around it, is left out of the clustering
# and joins the nearest speaker found without it (with --speakers 2, a 0.35 s fragment took
# the second speaker and merged the real second voice into the first).
MIN_CLUSTERED_SPEECH = 0.8
# Most windows clustered at once: their distance matrix (8 bytes a pair) stays at 32 MB and
# the clustering at seconds. A recording with more speech takes longer steps, and past that
# (many stretches shorter than a window, one window each) windows evenly spread (`plan_windows`).
MAX_WINDOWS = 2000


@dataclass(frozen=True, slots=True)
class Turn:
    """One speaker talking from start to end (seconds); speakers count from 0 in the order
    they first speak."""

    start: float
    end: float
    speaker: int


@dataclass(frozen=True, slots=True)
class SpeakerOptions:
    """How speakers are told apart. The defaults were chosen on the development conversations
    of bench/bench_speakers.py, whose voices are none of its test conversations' voices."""

    # None: find the number of speakers (groups of windows closer than `threshold` are one);
    # a number: exactly that many (fewer only when there are fewer windows).
    speakers: int | None = None
    # Most speakers found automatically.
    max_speakers: int = 8
    # Cosine distance between two groups of windows (the mean over their pairs: agglomerative
    # clustering, average linkage) below which they are one speaker. On the development
    # conversations DER was 5.2 % at 0.35 and under 7.5 % from 0.3 to 0.375; at 0.275 voices
    # began to split (12 %), at 0.425 to merge (12 %).
    threshold: float = 0.35
    # Audio (seconds) one embedding is made of, and the step between windows inside a stretch
    # of speech. Resemblyzer was trained on 1.6 s windows and takes any length; 2.4 s kept the
    # widest range of good thresholds on the first development conversations (1.6 s was as
    # good at its best one). Long recordings take longer steps: at most MAX_WINDOWS windows.
    window_seconds: float = 2.4
    hop_seconds: float = 0.4
    # A change of speaker inside a stretch of speech lasts at least this long (seconds).
    min_turn_seconds: float = 0.6
    # silero-vad's speech probability above which audio is speech.
    vad_threshold: float = 0.5
    embedder: str = "resemblyzer"

    def __post_init__(self) -> None:
        if self.speakers is not None and not (
            isinstance(self.speakers, int) and self.speakers >= 1
        ):
            raise ValueError(
                f"SpeakerOptions.speakers={self.speakers!r}: a whole number ≥ 1, or None "
                "(automatic)"
            )
        if not (isinstance(self.max_speakers, int) and self.max_speakers >= 1):
            raise ValueError(f"SpeakerOptions.max_speakers={self.max_speakers!r}: must be ≥ 1")
        if not 0 < self.threshold < 2:
            raise ValueError(
                f"SpeakerOptions.threshold={self.threshold}: a cosine distance in (0, 2)"
            )
        if not 0 < self.hop_seconds <= self.window_seconds:
            raise ValueError(
                f"SpeakerOptions: need 0 < hop_seconds ({self.hop_seconds}) <= window_seconds "
                f"({self.window_seconds})"
            )
        if self.min_turn_seconds < 0:
            raise ValueError(
                f"SpeakerOptions.min_turn_seconds={self.min_turn_seconds}: must be 0 or more"
            )
        if not 0 < self.vad_threshold < 1:
            raise ValueError(f"SpeakerOptions.vad_threshold={self.vad_threshold}: use (0, 1)")


# ---- embedders ----------------------------------------------------------------------------


class SpeakerEmbedder(Protocol):
    """Turns windows of 16 kHz audio into voice embeddings, one L2-normalized row each."""

    name: str

    def embed(self, windows: np.ndarray) -> np.ndarray:
        """windows: (n, samples) float32 → (n, dim) float32, each row of unit length."""
        ...


EMBEDDERS: dict[str, Callable[[], SpeakerEmbedder]] = {}


def register_embedder(name: str, factory: Callable[[], SpeakerEmbedder]) -> None:
    """Make an embedder available as SpeakerOptions.embedder=name (e.g. a pyannote model)."""
    EMBEDDERS[name] = factory


@functools.lru_cache(maxsize=4)
def load_embedder(name: str = "resemblyzer") -> SpeakerEmbedder:
    """The named embedder, loaded once per process."""
    if name not in EMBEDDERS:
        raise ValueError(f"speaker embedder {name!r} is unknown; choose one of {sorted(EMBEDDERS)}")
    return EMBEDDERS[name]()


class SpeakersUnavailable(TingxieError, ImportError):
    """The optional speaker packages are not installed."""


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise SpeakersUnavailable("speakers.missing", package=module, hint=install_hint("speakers"))


def ensure_available(options: SpeakerOptions | None = None) -> None:
    """Load the embedder and check the clustering library before any work starts; raises
    SpeakersUnavailable (saying what to install) when a package is missing."""
    _require("sklearn")
    load_embedder((options or SpeakerOptions()).embedder)


# Resemblyzer's hyperparameters (resemblyzer/hparams.py): 40 mel bands of 25 ms frames every
# 10 ms, a 3-layer LSTM of 256 units, a 256-dimensional embedding. Its mel spectrogram is
# computed here with NumPy (`mel_power`), equal to librosa's to float precision: librosa's first
# call compiles with numba, seconds of start-up for every run.
_MEL_BANDS, _MEL_WINDOW, _MEL_HOP = 40, 400, 160
_HIDDEN, _LAYERS, _DIM = 256, 3, 256
# Its training normalized each utterance's level to -30 dBFS; the encoder reads mel power,
# not its logarithm, so the level matters.
_TARGET_DBFS = -30.0
_BATCH = 64  # windows per forward pass


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear to 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200 / 3)
    return np.where(
        hz >= 1000, 15 + np.log(np.maximum(hz, 1e-10) / 1000) / (np.log(6.4) / 27), linear
    )


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15, 1000 * np.exp(np.log(6.4) / 27 * (mel - 15)), mel * 200 / 3)


@functools.cache
def _mel_filters() -> np.ndarray:
    """(bands, FFT bins): triangles spaced evenly on the mel scale from 0 Hz to Nyquist, each
    scaled to unit area (Slaney), as librosa.filters.mel builds them."""
    bins = np.linspace(0, SAMPLE_RATE / 2, 1 + _MEL_WINDOW // 2)
    edges = _mel_to_hz(np.linspace(0, _hz_to_mel(SAMPLE_RATE / 2), _MEL_BANDS + 2))
    ramps = edges[:, None] - bins[None, :]
    widths = np.diff(edges)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    filters = np.maximum(0, np.minimum(lower, upper))
    return (filters * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)


def mel_power(windows: np.ndarray) -> np.ndarray:
    """(n, samples) 16 kHz audio → (n, frames, bands) mel power spectrogram: 25 ms Hann
    frames every 10 ms, centred (half a frame of zeros before and after), as
    librosa.feature.melspectrogram computes it for Resemblyzer (power, not its logarithm)."""
    padded = np.pad(windows, ((0, 0), (_MEL_WINDOW // 2, _MEL_WINDOW // 2)))
    count = 1 + (padded.shape[1] - _MEL_WINDOW) // _MEL_HOP
    index = np.arange(_MEL_WINDOW)[None, :] + _MEL_HOP * np.arange(count)[:, None]
    hann = np.hanning(_MEL_WINDOW + 1)[:-1].astype(np.float32)  # periodic, as FFT frames use
    power = np.abs(np.fft.rfft(padded[:, index] * hann, axis=-1)) ** 2
    return np.einsum("ntf,mf->ntm", power.astype(np.float32), _mel_filters())


class ResemblyzerEmbedder:
    """Resemblyzer's pretrained speaker encoder, its weights read from the installed wheel."""

    name = "resemblyzer"

    def __init__(self, device: str = "cpu") -> None:
        _require("resemblyzer")
        import torch

        spec = importlib.util.find_spec("resemblyzer")
        weights = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
        # weights_only: plain tensors, no code runs while reading the file
        state = torch.load(weights, map_location="cpu", weights_only=True)["model_state"]
        self._lstm = torch.nn.LSTM(_MEL_BANDS, _HIDDEN, _LAYERS, batch_first=True)
        self._linear = torch.nn.Linear(_HIDDEN, _DIM)
        self._lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
        self._linear.load_state_dict(
            {k[7:]: v for k, v in state.items() if k.startswith("linear.")}
        )
        self._device = torch.device(device)
        for module in (self._lstm, self._linear):
            module.to(self._device).eval()

    def _mels(self, windows: np.ndarray) -> np.ndarray:
        """(windows, frames, bands) mel power, one frame per 10 ms, as Resemblyzer slices its
        partial utterances."""
        rms = np.sqrt(np.mean(np.square(windows, dtype=np.float64), axis=1, keepdims=True))
        gain = 10 ** (_TARGET_DBFS / 20) / np.maximum(rms, 1e-5)
        return mel_power((windows * gain).astype(np.float32))[:, : windows.shape[1] // _MEL_HOP]

    def embed(self, windows: np.ndarray) -> np.ndarray:
        import torch

        out = []
        for i in range(0, len(windows), _BATCH):
            mels = torch.from_numpy(self._mels(windows[i : i + _BATCH])).to(self._device)
            with torch.inference_mode():
                _, (hidden, _) = self._lstm(mels)
                raw = torch.relu(self._linear(hidden[-1]))
                out.append(torch.nn.functional.normalize(raw, dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, _DIM), np.float32)


register_embedder("resemblyzer", ResemblyzerEmbedder)


# ---- pure stages --------------------------------------------------------------------------


def speech_windows(
    regions: Sequence[tuple[float, float]], duration: float, window: float, hop: float
) -> list[tuple[float, float]]:
    """Windows (start, end in seconds, each `window` long) covering every stretch of speech:
    from its start every `hop`, the last one ending at its end; a stretch shorter than a
    window gets one window centred on it. Windows stay inside [0, duration] when it is at
    least a window long.

    >>> speech_windows([(1.0, 3.0), (5.0, 5.4)], 10.0, 1.6, 0.4)
    [(1.0, 2.6), (1.4, 3.0), (4.4, 6.0)]
    """
    out: list[tuple[float, float]] = []
    for start, end in regions:
        if end - start <= window:
            first = (start + end - window) / 2
            first = min(max(first, 0.0), max(duration - window, 0.0))
            out.append((round(first, 6), round(first + window, 6)))
            continue
        count = int(np.ceil((end - start - window) / hop - 1e-9)) + 1
        for k in range(count):
            first = min(start + k * hop, end - window)
            out.append((round(first, 6), round(first + window, 6)))
    return out


def plan_windows(
    regions: Sequence[tuple[float, float]], duration: float, options: SpeakerOptions
) -> list[tuple[float, float]]:
    """`speech_windows` over a recording, at most MAX_WINDOWS of them: the step grows with the
    speech, and when stretches shorter than a window (one window each, whatever the step) still
    give too many, windows evenly spread over them are kept; the speech of a window left out
    takes the speaker of the nearest one kept (`turns_from_windows`). 3 h of 2 s stretches gave
    4320 windows, 633 MiB of audio cut at once."""
    speech = sum(end - start for start, end in regions)
    hop = max(options.hop_seconds, speech / MAX_WINDOWS)  # past a window long: gaps between
    windows = speech_windows(regions, duration, options.window_seconds, hop)
    if len(windows) <= MAX_WINDOWS:
        return windows
    keep = np.unique(np.linspace(0, len(windows) - 1, MAX_WINDOWS).round().astype(int))
    return [windows[i] for i in keep]


def _first_appearance(labels: np.ndarray) -> np.ndarray:
    """Renumber labels 0, 1, 2, … in the order they first occur."""
    order = {}
    for label in labels.tolist():
        order.setdefault(label, len(order))
    return np.array([order[x] for x in labels.tolist()], dtype=int)


def _cosine_distances(embeddings: np.ndarray) -> np.ndarray:
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    return np.clip(1.0 - unit @ unit.T, 0.0, 2.0)


def cluster(embeddings: np.ndarray, options: SpeakerOptions | None = None) -> np.ndarray:
    """A speaker for every embedding (row), numbered from 0 in order of first occurrence:
    agglomerative clustering of their cosine distances with average linkage, stopped at
    options.threshold (at most options.max_speakers), or at exactly options.speakers
    (one per row when there are fewer rows)."""
    from sklearn.cluster import AgglomerativeClustering

    options = options or SpeakerOptions()
    n = len(embeddings)
    if n <= 1 or options.speakers == 1:
        return np.zeros(n, dtype=int)
    if options.speakers is not None and options.speakers >= n:
        return np.arange(n)
    distances = _cosine_distances(np.asarray(embeddings, dtype=np.float64))
    if options.speakers is None:
        labels = AgglomerativeClustering(
            n_clusters=None,
            distance_threshold=options.threshold,
            metric="precomputed",
            linkage="average",
        ).fit_predict(distances)
        if labels.max() < options.max_speakers:
            return _first_appearance(labels)
    count = options.speakers or options.max_speakers
    labels = AgglomerativeClustering(
        n_clusters=count, metric="precomputed", linkage="average"
    ).fit_predict(distances)
    return _first_appearance(labels)


def stretch_speech(
    regions: Sequence[tuple[float, float]], windows: Sequence[tuple[float, float]]
) -> np.ndarray:
    """Seconds of speech in the stretch each window was made for (the stretch its centre lies
    in, else the nearest one before it).

    >>> stretch_speech([(1.0, 3.0), (5.0, 5.5)], [(1.0, 2.6), (1.4, 3.0), (4.45, 6.05)]).tolist()
    [2.0, 2.0, 0.5]
    """
    if not regions:
        return np.zeros(len(windows))
    starts = np.array([start for start, _ in regions])
    lengths = np.array([end - start for start, end in regions])
    centres = np.array([(a + b) / 2 for a, b in windows]).reshape(-1)
    return lengths[np.clip(np.searchsorted(starts, centres, side="right") - 1, 0, None)]


def cluster_windows(
    embeddings: np.ndarray, speech: np.ndarray, options: SpeakerOptions | None = None
) -> np.ndarray:
    """`cluster` over the windows of stretches holding at least MIN_CLUSTERED_SPEECH seconds
    of speech (`speech`: each window's, from `stretch_speech`); each other window takes the
    speaker whose mean embedding is nearest (cosine). All windows are clustered when fewer
    than two are long enough."""
    voiced = np.asarray(speech) >= MIN_CLUSTERED_SPEECH
    if voiced.sum() < 2 or voiced.all():
        return cluster(embeddings, options)
    embeddings = np.asarray(embeddings, dtype=np.float64)
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    labels = np.empty(len(unit), dtype=int)
    labels[voiced] = cluster(unit[voiced], options)
    centroids = np.stack(
        [unit[voiced][labels[voiced] == k].mean(axis=0) for k in range(labels[voiced].max() + 1)]
    )
    labels[~voiced] = (unit[~voiced] @ centroids.T).argmax(axis=1)
    return _first_appearance(labels)


def _smooth(frame_labels: np.ndarray, min_frames: int) -> np.ndarray:
    """Give runs shorter than min_frames the label of their longer neighbour, shortest first,
    until every run is long enough or the whole stretch has one label."""
    labels = frame_labels.copy()
    while True:
        edges = np.flatnonzero(np.diff(labels)) + 1
        starts = np.concatenate([[0], edges])
        ends = np.concatenate([edges, [len(labels)]])
        lengths = ends - starts
        if len(starts) == 1 or lengths.min() >= min_frames:
            return labels
        i = int(np.argmin(lengths))
        left = lengths[i - 1] if i > 0 else -1
        right = lengths[i + 1] if i + 1 < len(starts) else -1
        neighbour = i - 1 if left >= right else i + 1
        labels[starts[i] : ends[i]] = labels[starts[neighbour]]


def turns_from_windows(
    regions: Sequence[tuple[float, float]],
    windows: Sequence[tuple[float, float]],
    labels: Sequence[int],
    min_turn_seconds: float = 0.6,
) -> list[Turn]:
    """Speaker turns over the stretches of speech: every 20 ms of speech takes the label most
    of the windows over it carry (each weighted by how near its centre the frame lies; a frame
    no window covers, the nearest window's), runs shorter than min_turn_seconds join a
    neighbour, and each run of one label is a turn."""
    if not windows:
        return []
    bounds = np.asarray(windows, dtype=np.float64)
    centres = bounds.mean(axis=1)
    labels = np.asarray(labels, dtype=int)
    speakers = int(labels.max()) + 1
    min_frames = max(1, round(min_turn_seconds / _FRAME_SECONDS))
    turns: list[Turn] = []
    for start, end in regions:
        n = max(1, round((end - start) / _FRAME_SECONDS))
        step = (end - start) / n
        times = start + (np.arange(n) + 0.5) * step
        votes = np.zeros((n, speakers))
        # each window over the stretch votes with a tent weight: 1 at its centre, 0 at its edges
        for w in np.flatnonzero((bounds[:, 0] < end) & (bounds[:, 1] > start)):
            lo, hi = bounds[w]
            first = max(0, int((lo - start) / step))
            stop = min(n, int(np.ceil((hi - start) / step)))
            tent = 1 - np.abs(times[first:stop] - centres[w]) / ((hi - lo) / 2)
            votes[first:stop, labels[w]] += np.clip(tent, 0, None)
        uncovered = votes.sum(axis=1) == 0
        frame_labels = votes.argmax(axis=1)
        if uncovered.any():
            nearest = np.abs(times[uncovered, None] - centres[None, :]).argmin(axis=1)
            frame_labels[uncovered] = labels[nearest]
        frame_labels = _smooth(frame_labels, min_frames)
        edges = np.flatnonzero(np.diff(frame_labels)) + 1
        cuts = [start, *(start + e * (end - start) / n for e in edges), end]
        runs = np.concatenate([[0], edges])
        turns += [
            Turn(round(a, 3), round(b, 3), int(frame_labels[r]))
            for a, b, r in zip(cuts[:-1], cuts[1:], runs, strict=True)
        ]
    return turns


def _char_speaker(c: Char, turns: Sequence[Turn], starts: np.ndarray) -> int:
    """The speaker of the turn that overlaps a character most, else of the nearest turn."""
    mid = (c.start + c.end) / 2
    lo, hi = min(c.start, mid - 0.05), max(c.end, mid + 0.05)
    i = int(np.searchsorted(starts, hi))
    best, best_overlap, best_gap = 0, 0.0, np.inf
    for t in turns[max(0, i - 8) : i + 1]:
        overlap = min(hi, t.end) - max(lo, t.start)
        gap = max(t.start - mid, mid - t.end, 0.0)
        if overlap > best_overlap or (best_overlap == 0 and gap < best_gap):
            best, best_overlap, best_gap = t.speaker, max(overlap, 0.0), gap
    if best_overlap == 0 and best_gap == np.inf:  # only past the searched turns
        best = min(turns, key=lambda t: max(t.start - mid, mid - t.end, 0.0)).speaker
    return best


def _runs(labels: list[int], min_chars: int) -> list[int]:
    """Per-character labels with runs shorter than min_chars given to the previous run (the
    next one at the start): a turn boundary a character off should not split a word."""
    labels = list(labels)
    changed = True
    while changed:
        changed = False
        k = 0
        while k < len(labels):
            j = k
            while j < len(labels) and labels[j] == labels[k]:
                j += 1
            if j - k < min_chars and (k > 0 or j < len(labels)):
                fill = labels[k - 1] if k > 0 else labels[j]
                labels[k:j] = [fill] * (j - k)
                changed = True
                break
            k = j
    return labels


def assign_speakers(
    segments: Sequence[Segment],
    turns: Sequence[Turn],
    *,
    split: bool = True,
    min_chars: int = 2,
) -> list[Segment]:
    """Segments with a speaker each: every character takes the speaker of the turn it lies in
    (the nearest turn when it lies in none); a segment whose characters change speaker is cut
    there when `split` (parts of at least min_chars characters; shorter runs go with their
    neighbour), else it takes the speaker of most of its characters; a punctuation mark goes
    with the character before it. Segments are numbered again from the first one's id, and
    speakers 0, 1, 2… in the order they first speak. Without turns, the segments come back
    unchanged.
    """
    if not turns:
        return list(segments)
    turns = sorted(turns, key=lambda t: t.start)
    starts = np.array([t.start for t in turns])
    out: list[Segment] = []
    first_id = segments[0].id if segments else 0
    for seg in segments:
        if not seg.chars:
            speaker = _char_speaker(Char("", seg.start, seg.end, 1.0), turns, starts)
            out.append(replace(seg, speaker=speaker))
            continue
        labels = [_char_speaker(c, turns, starts) for c in seg.chars]
        # a mark as a character (Whisper's, zero-length, in transcripts stored before marks
        # went into `after`) ends its word
        for k in range(1, len(labels)):
            if is_mark(seg.chars[k].text):
                labels[k] = labels[k - 1]
        labels = _runs(labels, min_chars)
        if not split:
            speaker = max(set(labels), key=labels.count)
            out.append(replace(seg, speaker=speaker))
            continue
        k = 0
        while k < len(labels):
            j = k
            while j < len(labels) and labels[j] == labels[k]:
                j += 1
            chars = seg.chars[k:j]
            start = seg.start if k == 0 else chars[0].start
            end = seg.end if j == len(labels) else chars[-1].end
            out.append(Segment(seg.id, start, end, chars, speaker=labels[k]))
            k = j
    # Numbered 0, 1, 2… in the order they first speak: a speaker whose turns were
    # smoothed away or hold no character must not leave a gap (说话人 1, 说话人 3).
    numbers: dict[int, int] = {}
    for seg in sorted(out, key=lambda s: s.start):
        numbers.setdefault(seg.speaker, len(numbers))
    return [replace(s, id=first_id + i, speaker=numbers[s.speaker]) for i, s in enumerate(out)]


# ---- the model-facing step ----------------------------------------------------------------


def _cut_windows(
    audio: np.ndarray, windows: Sequence[tuple[float, float]], length: int
) -> np.ndarray:
    out = np.zeros((len(windows), length), np.float32)
    for i, (start, _) in enumerate(windows):
        first = round(start * SAMPLE_RATE)
        piece = audio[first : first + length]
        out[i, : len(piece)] = piece
    return out


def _embed_windows(
    embedder: SpeakerEmbedder,
    audio: np.ndarray,
    windows: Sequence[tuple[float, float]],
    length: int,
) -> np.ndarray:
    """One embedding per window, the audio cut a batch at a time (64 windows of 2.4 s: 10 MB;
    all 2000 at once: 300 MB)."""
    return np.concatenate(
        [
            embedder.embed(_cut_windows(audio, windows[i : i + _BATCH], length))
            for i in range(0, len(windows), _BATCH)
        ]
    )


def diarize(
    audio: np.ndarray,
    options: SpeakerOptions | None = None,
    embedder: SpeakerEmbedder | None = None,
) -> list[Turn]:
    """Speaker turns of a whole 16 kHz recording (float32 mono, held whole: 230 MB an hour),
    in time order. Work: silero-vad over it, then about 0.04 s of CPU per window."""
    from .vad import find_speech

    options = options or SpeakerOptions()
    _require("sklearn")
    embedder = embedder or load_embedder(options.embedder)
    audio = np.asarray(audio, dtype=np.float32)
    duration = len(audio) / SAMPLE_RATE
    regions = find_speech(audio, threshold=options.vad_threshold)
    windows = plan_windows(regions, duration, options)
    if not windows:
        return []
    length = round(options.window_seconds * SAMPLE_RATE)
    embeddings = _embed_windows(embedder, audio, windows, length)
    labels = cluster_windows(embeddings, stretch_speech(regions, windows), options)
    log.info(
        "%d stretches of speech, %d windows, %d speakers",
        len(regions),
        len(windows),
        int(labels.max()) + 1,
    )
    return turns_from_windows(regions, windows, labels, options.min_turn_seconds)


def label_speakers(
    path: str | Path,
    segments: Sequence[Segment],
    options: SpeakerOptions | None = None,
    embedder: SpeakerEmbedder | None = None,
) -> list[Segment]:
    """The transcript of the recording at `path` with a speaker on every segment (split where
    the speaker changes inside one): `diarize` over the file's audio, then `assign_speakers`.
    What the CLI's --speakers and the app's speaker setting both run."""
    from .audio import load_audio

    return assign_speakers(segments, diarize(load_audio(path), options, embedder))
