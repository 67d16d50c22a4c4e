"""Tuning datasets: four import formats into one type, a stable split, and validation.

Audio is only ever read through `engine.audio`. Rows that cannot be used are skipped and listed
by file and row (never fatal unless nothing is left), so a user fixing a manifest sees every
problem at once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import logging
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from engine.errors import MESSAGES, TingxieError
from engine.normalize import NormalizeOptions, normalize_text

__all__ = [
    "DatasetError",
    "Example",
    "Finding",
    "RowError",
    "TuneDataset",
    "ValidationOptions",
    "ValidationReport",
    "ctc_frames_needed",
    "from_common_voice",
    "from_folder",
    "from_manifest",
    "from_pairs",
    "load_dataset",
    "load_example_audio",
    "manifest_text",
    "validate",
]

log = logging.getLogger("tingxie.data")

# Column names accepted in manifests, most specific first.
_PATH_COLUMNS = ("path", "audio", "file", "filename", "wav")
_TEXT_COLUMNS = ("text", "sentence", "transcript", "text_for_scoring", "transcription")
# Other columns a header names (Common Voice's among them): a first row naming one of these is
# a header, also when it lacks a path or text column, and is not read as a row of data.
_OTHER_COLUMNS = (
    "start", "end", "duration", "client_id", "sentence_id", "sentence_domain", "up_votes",
    "down_votes", "age", "gender", "accents", "variant", "locale", "segment",
)  # fmt: skip
# TSV as Common Voice writes it and as `manifest_text` does: cells end at a tab, and a quote
# is part of the text (quoting would join rows at a transcript that begins with one).
_TSV = dict(delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None)
# What would end a TSV cell or row: written as a space (normalization treats all whitespace
# alike).
_CELL_BREAKS = str.maketrans("\t\r\n", "   ")


class DatasetError(TingxieError, ValueError):
    """A dataset cannot be used at all (nothing readable, unknown layout); says what to do.
    Coded (`engine.errors`): str() is the English, `code` and `params` word it otherwise.
    `report`: where rows were read but none is usable, what is wrong with each."""

    report: ValidationReport | None = None


class RowError(TingxieError, ValueError):
    """One row cannot be used (a cell that is not a time, an empty span): the importers list
    it as a `Finding` of that row, worded by the same code."""


@dataclass(frozen=True, slots=True)
class Example:
    """One utterance: an audio file (or a span of it, in seconds) and its transcript."""

    audio: Path
    text: str
    start: float | None = None
    end: float | None = None
    # where the row came from ("manifest.tsv:12"), for messages; not part of identity
    origin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if (self.start is None) != (self.end is None):
            raise RowError("dataset.row_half_span", origin=self.origin or str(self.audio))
        if self.start is not None and not (0 <= self.start < self.end):
            raise RowError(
                "dataset.row_empty_span",
                origin=self.origin or str(self.audio),
                start=self.start,
                end=self.end,
            )

    @property
    def id(self) -> str:
        """Unique utterance id (the audio's path plus span): what durations are kept by, so
        same-named files in different folders (clips/00000.wav of two training sets) stay apart."""
        return self._spanned(str(self.audio))

    @property
    def split_key(self) -> str:
        """What decides the train / held-out side: the file name plus span, not the path, so a
        moved data folder, or sources combined into one manifest, keep every row on its side."""
        return self._spanned(self.audio.name)

    def _spanned(self, name: str) -> str:
        return name if self.start is None else f"{name}@{self.start:.3f}-{self.end:.3f}"


def _hash_unit(text: str) -> float:
    """A number in [0, 1) from a string, the same on every run and machine."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:12], 16) / 16**12


@dataclass(slots=True)
class TuneDataset:
    """Examples plus what the importer could not read (listed, not fatal)."""

    examples: list[Example]
    source: str = ""
    import_problems: list[Finding] = field(default_factory=list)

    def split(self, heldout_fraction: float = 0.1) -> tuple[list[Example], list[Example]]:
        """Train / held-out by a hash of each utterance id, so adding rows never moves old ones.
        Keeps at least one example on each side when there are two or more."""
        if not 0 <= heldout_fraction < 1:
            raise ValueError(f"heldout_fraction={heldout_fraction}: choose a value in [0, 1)")
        scored = [(_hash_unit(e.split_key), e) for e in self.examples]
        heldout = [e for h, e in scored if h < heldout_fraction]
        train = [e for h, e in scored if h >= heldout_fraction]
        if heldout_fraction > 0 and len(scored) >= 2:
            if not heldout:
                first = min(scored, key=lambda p: p[0])[1]
                heldout, train = [first], [e for e in train if e is not first]
            elif not train:
                last = max(scored, key=lambda p: p[0])[1]
                train, heldout = [last], [e for e in heldout if e is not last]
        return train, heldout

    def normalized(self, options: NormalizeOptions) -> TuneDataset:
        """The same dataset with every transcript normalized (see `engine.normalize`), and
        without format characters (`_visible_text`) whatever the options."""
        examples = [
            replace(e, text=normalize_text(_visible_text(e.text), options)) for e in self.examples
        ]
        return TuneDataset(examples, self.source, list(self.import_problems))


def _visible_text(text: str) -> str:
    """`text` without Unicode format characters (category Cf: a byte order mark, zero-width
    spaces and joiners, direction marks): invisible, pasted in from web pages and editors, and
    no model writes them, so a transcript holding one would be skipped or grow the vocabulary."""
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


FindingKind = Literal[
    "missing_audio",
    "unreadable_audio",
    "bad_row",
    "empty_text",
    "too_short",
    "too_long",
    "text_too_long",
    "unknown_chars",
]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem with one row. `detail` says it in English (the CLI's table, the log); `code`
    and `params` say the same as an `engine.errors` code, for a front end to word in its own
    language (`code` "" when the detail is a system's message, known only in English)."""

    origin: str  # "file:row" or the audio path
    kind: FindingKind
    detail: str
    skipped: bool = True
    code: str = ""
    params: Mapping[str, object] = field(default_factory=dict, compare=False)

    @classmethod
    def coded(
        cls, code: str, origin: str, kind: FindingKind, skipped: bool = True, **params: object
    ) -> Finding:
        """A finding whose detail is `code`'s wording (engine.errors.MESSAGES) of `params`."""
        return cls(origin, kind, MESSAGES[code].format(**params), skipped, code, params)

    @classmethod
    def from_error(cls, origin: str, kind: FindingKind, error: Exception) -> Finding:
        """A finding worded by `error`: by its code when it has one."""
        detail = next(iter(str(error).splitlines()), "")
        if isinstance(error, TingxieError):
            return cls(origin, kind, detail, True, error.code, error.params)
        return cls(origin, kind, detail)


# ---- importers ---------------------------------------------------------------------------


def _audio_extensions() -> frozenset[str]:
    from engine.audio import SUPPORTED_EXTENSIONS

    return SUPPORTED_EXTENSIONS


def from_folder(folder: str | Path) -> TuneDataset:
    """Audio files with a same-named `.txt` transcript beside them (searched recursively)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError("dataset.not_a_folder", folder=folder)
    extensions = _audio_extensions()
    examples, problems = [], []
    for audio in sorted(p for p in folder.rglob("*") if p.suffix.lower() in extensions):
        txt = audio.with_suffix(".txt")
        if not txt.is_file():
            problems.append(
                Finding.coded("dataset.row_no_transcript", str(audio), "bad_row", name=txt.name)
            )
            continue
        try:
            text = txt.read_text(encoding="utf-8-sig").strip()  # Notepad may begin with a BOM
        except (OSError, UnicodeDecodeError) as e:
            problems.append(
                Finding.coded(
                    "dataset.row_transcript_unreadable", str(txt), "bad_row", detail=str(e)
                )
            )
            continue
        examples.append(Example(audio, text, origin=str(audio)))
    return TuneDataset(examples, str(folder), problems)


def _pick_column(header: list[str], names: Sequence[str]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where a manifest row's cells are, and how many it may have (more means the text was
    split at a delimiter inside it)."""

    path: int
    text: int
    start: int | None
    end: int | None
    width: int
    delimiter: str


def _layout(header: list[str], delimiter: str, manifest: Path) -> tuple[_Layout, bool]:
    """The columns a manifest's first row names, and whether it is a header: one naming a
    known column but neither a path nor a text column raises DatasetError saying what it
    lacks (read as data, every row would be misread)."""
    path, text = _pick_column(header, _PATH_COLUMNS), _pick_column(header, _TEXT_COLUMNS)
    if path is not None and text is not None:
        start, end = _pick_column(header, ("start",)), _pick_column(header, ("end",))
        return _Layout(path, text, start, end, len(header), delimiter), True
    known = {*_PATH_COLUMNS, *_TEXT_COLUMNS, *_OTHER_COLUMNS}
    if any(h.strip().lower() in known for h in header):
        columns, paths, texts = (", ".join(c) for c in (header, _PATH_COLUMNS, _TEXT_COLUMNS))
        if path is None and text is None:
            raise DatasetError(
                "dataset.no_path_or_text_column",
                path=manifest,
                columns=columns,
                path_names=paths,
                text_names=texts,
            )
        code = "dataset.no_path_column" if path is None else "dataset.no_text_column"
        raise DatasetError(
            code, path=manifest, columns=columns, names=paths if path is None else texts
        )
    return _Layout(0, 1, 2, 3, 4, delimiter), False


def _manifest_row(row: list[str], layout: _Layout, folder: Path, origin: str) -> Example:
    """One manifest row as an Example; RowError says what is wrong with it."""
    if max(layout.path, layout.text) >= len(row):
        raise RowError("dataset.row_too_few_columns", count=len(row))
    if any(cell.strip() for cell in row[layout.width :]):
        code = (
            "dataset.row_tab_in_text" if layout.delimiter == "\t" else "dataset.row_comma_in_text"
        )
        raise RowError(code, count=len(row), width=layout.width)

    def number(col: int | None) -> float | None:
        if col is None or col >= len(row) or not row[col].strip():
            return None
        try:
            return float(row[col])
        except ValueError:
            raise RowError("dataset.row_bad_time", value=row[col]) from None

    path = Path(row[layout.path].strip())
    audio = path if path.is_absolute() else folder / path
    text = row[layout.text].strip()
    return Example(audio, text, number(layout.start), number(layout.end), origin=origin)


def manifest_text(
    rows: Iterable[Sequence[object]], header: Sequence[str] = ("path", "text")
) -> str:
    """A TSV manifest as `from_manifest` reads it back, cell for cell: a header row (by default
    `path<TAB>text`), then one row per clip. A tab or line break, which no TSV cell can hold,
    is written as a space."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", **_TSV)
    for row in itertools.chain([header], rows):
        writer.writerow([str(cell).translate(_CELL_BREAKS) for cell in row])
    return buf.getvalue()


def _records(text: str, delimiter: str) -> Iterator[tuple[int, int, list[str]]]:
    """The rows of a table with the first and last line each spans. Lines end at \\n, \\r\\n
    or \\r, never at U+2028 and the other breaks `str.splitlines` knows, which a transcript may
    hold; a CSV row spans several lines only when a quoted cell runs on."""
    dialect = _TSV if delimiter == "\t" else dict(delimiter=delimiter)
    reader = csv.reader(io.StringIO(text, newline=""), **dialect)
    first = 1
    for row in reader:
        yield first, reader.line_num, row
        first = reader.line_num + 1


def from_manifest(manifest: str | Path) -> TuneDataset:
    """A CSV or TSV manifest with columns path, text[, start, end] (a header row naming them,
    or those four in that order). Relative paths resolve against the manifest's folder. A TSV
    quote is text; a CSV cell may be quoted, and a row whose quote closes only on a later line
    is reported, never merged with the rows in between."""
    manifest = Path(manifest)
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError("dataset.manifest_unreadable", path=manifest, detail=str(e)) from e
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if manifest.suffix.lower() == ".tsv" or "\t" in first_line else ","
    try:
        rows = list(_records(text, delimiter))
    except csv.Error as e:  # a cell past csv's size limit: a quote that never closes
        raise DatasetError("dataset.manifest_not_a_table", path=manifest, detail=str(e)) from e
    if not rows:
        raise DatasetError("dataset.manifest_empty", path=manifest, delimiter=delimiter)
    layout, has_header = _layout(rows[0][2], delimiter, manifest)
    examples, problems = [], []
    for first, last, row in rows[1 if has_header else 0 :]:
        origin = f"{manifest.name}:{first}"
        if not any(cell.strip() for cell in row):
            continue
        if last > first:
            problems.append(
                Finding.coded(
                    "dataset.row_quote_runs_on", origin, "bad_row", first=first, last=last
                )
            )
            continue
        try:
            examples.append(_manifest_row(row, layout, manifest.parent, origin))
        except ValueError as e:
            problems.append(Finding.from_error(origin, "bad_row", e))
    return TuneDataset(examples, str(manifest), problems)


def from_common_voice(folder: str | Path, split: str = "train") -> TuneDataset:
    """The Common Voice layout: `<split>.tsv` (columns path, sentence) beside a `clips/` folder."""
    folder = Path(folder)
    tsv = folder / f"{split}.tsv"
    if not tsv.is_file() or not (folder / "clips").is_dir():
        raise DatasetError("dataset.not_common_voice", folder=folder, tsv=tsv.name)
    dataset = from_manifest(tsv)
    examples = [replace(e, audio=folder / "clips" / e.audio.name) for e in dataset.examples]
    return TuneDataset(examples, str(folder), dataset.import_problems)


def from_pairs(
    pairs: Iterable[tuple[str | Path, float | None, float | None, str]], source: str = "pairs"
) -> TuneDataset:
    """(audio path, start, end, text) tuples, e.g. corrections handed over by the app."""
    examples, problems = [], []
    for number, (audio, start, end, text) in enumerate(pairs, start=1):
        origin = f"{source}#{number}"
        try:
            examples.append(Example(Path(audio), text, start, end, origin=origin))
        except ValueError as e:
            problems.append(Finding.from_error(origin, "bad_row", e))
    return TuneDataset(examples, source, problems)


def load_dataset(source: str | Path) -> TuneDataset:
    """Pick the importer from what `source` is: a manifest file, a Common Voice folder, or a
    folder of audio + .txt."""
    source = Path(source)
    if source.is_file():
        return from_manifest(source)
    if source.is_dir():
        if (source / "clips").is_dir() and (source / "train.tsv").is_file():
            return from_common_voice(source)
        return from_folder(source)
    raise DatasetError("dataset.source_missing", source=source)


# ---- audio access ------------------------------------------------------------------------


def load_example_audio(example: Example) -> np.ndarray:
    """16 kHz mono float32 samples of one example (its span only, when it has one)."""
    from engine.audio import load_audio, read_span

    if example.start is None:
        return load_audio(example.audio)
    return read_span(example.audio, example.start, example.end)


def _duration(example: Example) -> float:
    """Seconds of audio the example covers; raises the audio module's error when unreadable."""
    from engine.audio import probe

    info = probe(example.audio)
    if example.start is None:
        return float(info.duration)
    if example.end > info.duration + 0.05:
        raise RowError("dataset.row_span_past_end", end=example.end, duration=info.duration)
    return example.end - example.start


# ---- validation --------------------------------------------------------------------------


def ctc_frames_needed(text: str) -> int:
    """Frames CTC needs for a label sequence: one per character plus a blank between repeats."""
    repeats = sum(a == b for a, b in itertools.pairwise(text))
    return len(text) + repeats


@dataclass(slots=True)
class ValidationReport:
    """What validation found: the usable examples, every finding, unknown characters."""

    kept: list[Example]
    findings: list[Finding]
    total: int
    durations: dict[str, float] = field(default_factory=dict)  # example id -> seconds
    unknown_chars: Counter = field(default_factory=Counter)
    unknown_examples: dict[str, list[str]] = field(default_factory=dict)  # char -> origins

    @property
    def skipped(self) -> list[Finding]:
        return [f for f in self.findings if f.skipped]

    @property
    def kept_seconds(self) -> float:
        return sum(self.durations.get(e.id, 0.0) for e in self.kept)

    def counts(self) -> Counter:
        return Counter(f.kind for f in self.findings)

    def table(self, limit: int = 20) -> str:
        """A plain-text table for the CLI and the app's log view."""
        lines = [f"{len(self.kept)} of {self.total} rows usable ({self.kept_seconds:.1f} s)"]
        for kind, n in sorted(self.counts().items()):
            lines.append(f"  {kind:<17} {n}")
        for f in self.findings[:limit]:
            mark = "skipped" if f.skipped else "kept"
            lines.append(f"  {f.origin:<40} {f.kind:<17} {mark:<8} {f.detail}")
        if len(self.findings) > limit:
            lines.append(f"  … and {len(self.findings) - limit} more")
        if self.unknown_chars:
            top = ", ".join(
                f"{c}×{n} (e.g. {self.unknown_examples[c][0]})"
                for c, n in self.unknown_chars.most_common(10)
            )
            lines.append(f"  characters outside the vocabulary: {top}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class ValidationOptions:
    """Limits an example must meet to be trained on."""

    min_seconds: float = 0.3
    max_seconds: float = 30.0
    # seconds of audio per model output frame (20 ms for wav2vec2); None: not a CTC model, whose
    # rule of a frame per label does not apply
    frame_seconds: float | None = 0.02
    # keep rows with characters outside the vocabulary (the vocabulary will grow)
    allow_new_chars: bool = False
    # a decoder's limit on a transcript (Whisper's 448 tokens): how to count, and the most
    token_limit: tuple[Callable[[str], int], int] | None = None


def _check_example(
    e: Example, vocab: set[str] | None, options: ValidationOptions, duration_of: Callable
) -> tuple[list[Finding], float | None, str]:
    """Findings for one example, its duration (None if unreadable) and its unknown characters."""
    from engine.audio import AudioError

    origin = e.origin or str(e.audio)
    if not e.audio.is_file():
        missing = Finding.coded("dataset.row_audio_missing", origin, "missing_audio", path=e.audio)
        return [missing], None, ""
    try:
        seconds = duration_of(e)
    except (AudioError, OSError, ValueError) as err:
        return [Finding.from_error(origin, "unreadable_audio", err)], None, ""
    findings = []
    unknown = "" if vocab is None else "".join(dict.fromkeys(c for c in e.text if c not in vocab))
    if not e.text:
        findings.append(Finding.coded("dataset.row_empty_text", origin, "empty_text"))
    if seconds < options.min_seconds:
        findings.append(
            Finding.coded(
                "dataset.row_too_short",
                origin,
                "too_short",
                seconds=seconds,
                limit=options.min_seconds,
            )
        )
    if seconds > options.max_seconds:
        findings.append(
            Finding.coded(
                "dataset.row_too_long",
                origin,
                "too_long",
                seconds=seconds,
                limit=options.max_seconds,
            )
        )
    if e.text and options.frame_seconds is not None:
        frames, needed = int(seconds / options.frame_seconds), ctc_frames_needed(e.text)
        if needed > frames:
            findings.append(
                Finding.coded(
                    "dataset.row_ctc_too_long",
                    origin,
                    "text_too_long",
                    labels=needed,
                    frames=frames,
                )
            )
    if e.text and options.token_limit is not None:
        count, most = options.token_limit[0](e.text), options.token_limit[1]
        if count > most:
            findings.append(
                Finding.coded(
                    "dataset.row_tokens_too_long",
                    origin,
                    "text_too_long",
                    count=count,
                    limit=most,
                )
            )
    if unknown:
        findings.append(
            Finding.coded(
                "dataset.row_unknown_chars",
                origin,
                "unknown_chars",
                not options.allow_new_chars,
                chars=unknown,
            )
        )
    return findings, seconds, unknown


def validate(
    dataset: TuneDataset,
    vocab: Iterable[str] | None,
    options: ValidationOptions | None = None,
    *,
    duration_of: Callable[[Example], float] = _duration,
) -> ValidationReport:
    """Check every example; the report keeps the usable ones and lists the rest by row
    (`vocab` None: every character can be written). Raises DatasetError only when no example
    is usable."""
    options = options or ValidationOptions()
    vocab = None if vocab is None else set(vocab)
    report = ValidationReport([], list(dataset.import_problems), len(dataset.examples))
    for e in dataset.examples:
        findings, seconds, unknown = _check_example(e, vocab, options, duration_of)
        report.findings.extend(findings)
        for c in unknown:
            report.unknown_chars[c] += e.text.count(c)
            report.unknown_examples.setdefault(c, []).append(e.origin or str(e.audio))
        if seconds is not None:
            report.durations[e.id] = seconds
        if not any(f.skipped for f in findings):
            report.kept.append(e)
    if not report.kept:
        counts = tuple(sorted(report.counts().items()))  # ((kind, rows), …)
        error = DatasetError(
            "dataset.none_usable",
            source=dataset.source or "dataset",
            total=report.total,
            found=", ".join(f"{n} {kind}" for kind, n in counts),
            counts=counts,  # the same, for a front end to word
        )
        error.report = report  # the rows' table, which the message sends the user to
        raise error
    log.info("validated %s: %d/%d rows usable", dataset.source, len(report.kept), report.total)
    return report
