"""Tuning datasets: four import formats into one type, a stable split, and validation.

Audio is only ever read through `engine.audio`. Rows that cannot be used are skipped and listed
by file and row (never fatal unless nothing is left), so a user fixing a manifest sees every
problem at once.
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import io
import itertools
import json
import logging
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from engine.atomic import atomic_write_text
from engine.errors import MESSAGES, TingxieError
from engine.normalize import NormalizeOptions, normalize_text

__all__ = [
    "MIN_SPLIT_ROWS",
    "DatasetError",
    "Example",
    "Finding",
    "RowError",
    "SourceKind",
    "SplitBy",
    "TuneDataset",
    "ValidationOptions",
    "ValidationReport",
    "checked_source",
    "ctc_frames_needed",
    "empty_text",
    "from_common_voice",
    "from_folder",
    "from_manifest",
    "from_pairs",
    "heldout_shares",
    "import_problems_file",
    "load_dataset",
    "load_example_audio",
    "manifest_text",
    "source_kind",
    "validate",
    "write_import_problems",
]

log = logging.getLogger("tingxie.data")

# Column names accepted in manifests, most specific first.
_PATH_COLUMNS = ("path", "audio", "file", "filename", "wav")
_TEXT_COLUMNS = ("text", "sentence", "transcript", "text_for_scoring", "transcription")
# Keys of a JSON-lines manifest's objects (HF datasets' and NeMo's), most specific first.
_JSON_PATH_KEYS = ("audio_filepath", "audio", "path", "file")
_JSON_TEXT_KEYS = ("text", "sentence", "transcript")
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
# Digits with something between them (2.5, 120/80, 3:30, 1,000), and the digits that follow.
_DIGITS_APART = re.compile(r"(\d+)(\W+)(?=(\d+))")


class DatasetError(TingxieError, ValueError):
    """A dataset cannot be used at all (nothing readable, unknown layout); says what to do.
    Coded (`engine.errors`): str() is the English, `code` and `params` word it otherwise.
    `report`: where rows were read but none is usable (or some the job would refuse), what is
    wrong with each."""

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
    def content_key(self) -> str | None:
        """The clip as what it holds: its audio's fingerprint (`_fingerprint`) plus span, the
        same whatever the file is named and wherever it lies (Review names every training
        set's clips clips/00000.wav, … by position); None when the file cannot be read."""
        fingerprint = _fingerprint(self.audio)
        return None if fingerprint is None else self._spanned(fingerprint)

    @property
    def split_key(self) -> str:
        """What decides the row's train / held-out side (`_split_keys`): its `content_key`, so
        a moved data folder, sources combined, a set rebuilt with its clips renumbered, or the
        same clip in two sets keep it on its side; the file name plus span where the audio
        cannot be read."""
        return self.content_key or self._spanned(self.audio.name)

    @property
    def where(self) -> str:
        """The row for messages: its origin, else its audio's path."""
        return self.origin or str(self.audio)

    def _spanned(self, name: str) -> str:
        return name if self.start is None else f"{name}@{self.start:.3f}-{self.end:.3f}"


def _hash_unit(text: str) -> float:
    """A number in [0, 1) from a string, the same on every run and machine."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:12], 16) / 16**12


# A file up to _FINGERPRINT_WHOLE bytes is hashed whole; a larger one by its size, its first and
# last _FINGERPRINT_END bytes and _FINGERPRINT_PROBES blocks spread evenly between, about 48 KiB
# whatever its length: checking a 100-hour dataset of clips reads that much per clip, not the
# dataset once more, and the blocks between keep apart two recordings of one length whose ends
# are the same seconds of digital silence.
_FINGERPRINT_WHOLE = 64 << 10
_FINGERPRINT_END = 16 << 10
_FINGERPRINT_PROBES = 16
_FINGERPRINT_PROBE = 1 << 10


def _fingerprint(path: Path) -> str | None:
    """A digest of a file's size and sampled bytes (`_FINGERPRINT_WHOLE`): the same for copies
    of one clip, whatever their names; None when it cannot be read."""
    try:
        stat = path.stat()
        return _fingerprint_of(str(path), stat.st_size, stat.st_mtime_ns)
    except OSError:
        return None


# Keyed by size and time too, so a rewritten file is read again. Large enough for every clip of a
# big corpus (AISHELL-1: 141 k): the check, the split and a resumed job each walk the clips in
# order, and an LRU smaller than the corpus would have evicted each clip before its next pass.
@functools.lru_cache(maxsize=1 << 20)
def _fingerprint_of(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha1(f"{size}\n".encode())
    with open(path, "rb") as f:
        if size <= _FINGERPRINT_WHOLE:
            digest.update(f.read())
            return digest.hexdigest()[:20]
        digest.update(f.read(_FINGERPRINT_END))
        span = size - 2 * _FINGERPRINT_END - _FINGERPRINT_PROBE
        for i in range(_FINGERPRINT_PROBES):
            f.seek(_FINGERPRINT_END + span * i // (_FINGERPRINT_PROBES - 1))
            digest.update(f.read(_FINGERPRINT_PROBE))
        f.seek(-_FINGERPRINT_END, io.SEEK_END)
        digest.update(f.read())
    return digest.hexdigest()[:20]


SplitBy = Literal["content", "name"]


def _split_keys(examples: Sequence[Example], by: SplitBy = "content") -> list[str]:
    """Each example's split key: its `content_key` (by "content"), else, and for every row by
    "name" (how jobs made before content keys split, `engine.tune.jobs.resumed_split`), its
    file name when no other file has that name, or the name with as many of the folders above it as
    tell the files apart (utt001/audio.wav, utt002/audio.wav: one folder per utterance).

    >>> [k.split("/")[-2:] for k in _split_keys([Example(Path(f"/d/{u}/a.wav"), "") for u in "xy"])]
    [['x', 'a.wav'], ['y', 'a.wav']]
    """
    names = _name_keys(examples)
    if by == "name":
        return names
    return [e.content_key or name for e, name in zip(examples, names, strict=True)]


def _name_keys(examples: Sequence[Example]) -> list[str]:
    """`_split_keys` by file name, with the folders above that tell same-named files apart."""
    tails: dict[Path, str] = {}
    pending, depth = {e.audio for e in examples}, 1
    while pending:
        groups: defaultdict[str, list[Path]] = defaultdict(list)
        for audio in pending:
            groups["/".join(audio.parts[-depth:])].append(audio)
        pending = set()
        for tail, files in groups.items():
            if len(files) == 1 or depth >= max(len(f.parts) for f in files):
                tails.update(dict.fromkeys(files, tail))
            else:
                pending.update(files)
        depth += 1
    return [e._spanned(tails[e.audio]) for e in examples]


@dataclass(slots=True)
class TuneDataset:
    """Examples plus what the importer could not read (listed, not fatal)."""

    examples: list[Example]
    source: str = ""
    import_problems: list[Finding] = field(default_factory=list)

    def split(
        self, heldout_fraction: float = 0.1, by: SplitBy = "content"
    ) -> tuple[list[Example], list[Example]]:
        """Train / held-out by a hash of each utterance's key (`_split_keys`), so adding rows
        never moves old ones, and rows of one key (a clip listed twice) share a side. Keeps at
        least one clip for training (a job needs one, a held-out CER does not), and one held
        out when there are two or more."""
        if not 0 <= heldout_fraction < 1:
            raise ValueError(f"heldout_fraction={heldout_fraction}: choose a value in [0, 1)")
        keys = _split_keys(self.examples, by)
        scored = sorted((_hash_unit(k), k) for k in set(keys))
        held = {k for h, k in scored if h < heldout_fraction}
        if scored and len(held) == len(scored):
            held.discard(scored[-1][1])
        elif heldout_fraction > 0 and len(scored) >= 2 and not held:
            held.add(scored[0][1])
        pairs = list(zip(keys, self.examples, strict=True))
        return [e for k, e in pairs if k not in held], [e for k, e in pairs if k in held]

    def normalized(self, options: NormalizeOptions) -> TuneDataset:
        """The same dataset with every transcript normalized (see `engine.normalize`), and
        without format characters (`_visible_text`) whatever the options. A row with a number
        whose digits normalization would join (2.5 → 25) is left out and listed: it would train
        on another number than the one spoken."""
        examples, problems = [], list(self.import_problems)
        for e in self.examples:
            text = _visible_text(e.text)
            if joined := _joined_number(text, options):
                number, digits = joined
                problems.append(
                    Finding.coded(
                        "dataset.row_number_joined",
                        e.where,
                        "bad_row",
                        number=number,
                        joined=digits,
                    )
                )
            else:
                examples.append(replace(e, text=normalize_text(text, options)))
        return TuneDataset(examples, self.source, problems)


# The held-out rows are split in two (`heldout_shares`), one share choosing the checkpoint and
# the other measuring the CER reported before → after, only from this many rows on: fewer leave
# a share under 4 recordings, whose CER is too noisy to choose a step by. With fewer, no step is
# chosen (the last one is kept) and every held-out row measures the reported CER.
MIN_SPLIT_ROWS = 8


def heldout_shares(rows: int, split: bool) -> tuple[range, range]:
    """(report, selection): the indices of the held-out rows whose CER is reported (before →
    after, the curves) and of those whose CER chooses the checkpoint. Split by position, even
    rows report and odd rows choose: the same on every process and across resumes (a resumed
    job has the same held-out rows, `engine.tune.jobs.check_resumable`). Not split, every row
    reports and none chooses. Here, beside the split into train and held out, so the data
    check (engine.tune.prepare, no torch) says what the job will do.

    >>> heldout_shares(5, split=True)
    (range(0, 5, 2), range(1, 5, 2))
    """
    return (range(0, rows, 2), range(1, rows, 2)) if split else (range(rows), range(0))


def _visible_text(text: str) -> str:
    """`text` without Unicode format characters (category Cf: a byte order mark, zero-width
    spaces and joiners, direction marks): invisible, pasted in from web pages and editors, and
    no model writes them, so a transcript holding one would be skipped or grow the vocabulary."""
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def _joined_number(text: str, options: NormalizeOptions) -> tuple[str, str] | None:
    """The first number in `text` whose digits normalization would join, as written and as it
    would train ("2.5", "25"; "120/80", "12080"; "3:30", "330"), or None when every number
    keeps its value: what stands between its digits survives normalization, or it is a
    thousands comma before three digits (1,000 → 1000)."""
    for match in _DIGITS_APART.finditer(text):
        left, between, right = match.groups()
        if normalize_text(between, options):
            continue
        if unicodedata.normalize("NFKC", between) == "," and len(right) == 3:
            continue
        return left + between + right, left + right
    return None


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


def _read_text(path: Path) -> str:
    """A text file as Windows tools save it as well as UTF-8 (with or without Notepad's byte
    order mark): UTF-16 with a byte order mark (Notepad's and Excel's "Unicode"), and GB18030,
    which holds GBK (Notepad's "ANSI" and Excel's CSV on a Chinese Windows). Raises
    UnicodeDecodeError when none of them reads it, OSError when the file cannot be read."""
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("gb18030")
        log.info("%s is not UTF-8: read as GB18030 (GBK)", path)
        return text


def _folder_rows(folder: Path) -> Iterator[tuple[Path | None, Path | None]]:
    """(audio, transcript) for each stem in `folder` and below, either None when missing. The
    audio is each file of a known audio extension, else, beside a transcript, the largest other
    file of its stem (.wma, .amr …: probing judges whether it is audio; a label file is
    smaller than its recording)."""
    extensions = _audio_extensions()
    stems: defaultdict[Path, list[Path]] = defaultdict(list)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stems[path.with_suffix("")].append(path)
    for files in stems.values():
        txt = next((p for p in files if p.suffix.lower() == ".txt"), None)
        others = [p for p in files if p.suffix.lower() != ".txt"]
        audio = [p for p in others if p.suffix.lower() in extensions]
        if not audio and txt is not None:
            audio = [max(others, key=lambda p: p.stat().st_size)] if others else [None]
        yield from ((a, txt) for a in audio)


def from_folder(folder: str | Path) -> TuneDataset:
    """Audio files with a same-named `.txt` transcript beside them (searched recursively);
    an audio file without one, and a transcript without audio, are rows that say so."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError("dataset.not_a_folder", folder=folder)
    examples, problems = [], []
    for audio, txt in _folder_rows(folder):
        if txt is None:
            name = audio.with_suffix(".txt").name
            problems.append(
                Finding.coded("dataset.row_no_transcript", str(audio), "bad_row", name=name)
            )
            continue
        if audio is None:
            problems.append(
                Finding.coded("dataset.row_no_audio", str(txt), "bad_row", name=txt.stem)
            )
            continue
        try:
            text = _read_text(txt).strip()
        except UnicodeDecodeError:
            problems.append(Finding.coded("dataset.text_encoding", str(txt), "bad_row", path=txt))
            continue
        except OSError as e:
            problems.append(
                Finding.coded(
                    "dataset.row_transcript_unreadable", str(txt), "bad_row", detail=str(e)
                )
            )
            continue
        examples.append(Example(audio, text, origin=str(audio)))
    return TuneDataset(examples, str(folder), problems)


def _unquoted(cell: str) -> str:
    """`cell` without the spaces and the one pair of double quotes around it: a TSV written
    with every cell quoted (csv's QUOTE_ALL) names its columns and audio paths so. Any other
    quote stays (a TSV quote in a transcript is text)."""
    cell = cell.strip()
    return cell[1:-1].strip() if len(cell) > 1 and cell[0] == cell[-1] == '"' else cell


def _column_names(header: Iterable[str]) -> list[str]:
    """A header row's cells as column names, lower-cased and unquoted (`_unquoted`)."""
    return [_unquoted(h).lower() for h in header]


def _pick_column(header: list[str], names: Sequence[str]) -> int | None:
    lowered = _column_names(header)
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where a manifest row's cells are, how many it may have (more means the text was split
    at a delimiter inside it, or columns the header does not name), and whether a header row
    named them (else they are path, text, start, end)."""

    path: int
    text: int
    start: int | None
    end: int | None
    width: int
    delimiter: str
    header: bool = True


def _layout(header: list[str], delimiter: str, manifest: Path) -> tuple[_Layout, bool]:
    """The columns a manifest's first row names, and whether it is a header: one naming a
    known column but neither a path nor a text column raises DatasetError saying what it
    lacks (read as data, every row would be misread)."""
    path, text = _pick_column(header, _PATH_COLUMNS), _pick_column(header, _TEXT_COLUMNS)
    if path is not None and text is not None:
        start, end = _pick_column(header, ("start",)), _pick_column(header, ("end",))
        return _Layout(path, text, start, end, len(header), delimiter), True
    known = {*_PATH_COLUMNS, *_TEXT_COLUMNS, *_OTHER_COLUMNS}
    if any(h in known for h in _column_names(header)):
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
    return _Layout(0, 1, 2, 3, 4, delimiter, header=False), False


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _manifest_row(row: list[str], layout: _Layout, folder: Path, origin: str) -> Example:
    """One manifest row as an Example; RowError says what is wrong with it."""
    if max(layout.path, layout.text) >= len(row):
        raise RowError("dataset.row_too_few_columns", count=len(row))
    extra = [cell.strip() for cell in row[layout.width :] if cell.strip()]
    if extra and all(map(_is_number, extra)):  # times or durations, not a split text
        raise RowError(
            "dataset.row_extra_columns", count=len(row), width=layout.width, cells=", ".join(extra)
        )
    if extra:
        code = (
            "dataset.row_tab_in_text" if layout.delimiter == "\t" else "dataset.row_comma_in_text"
        )
        raise RowError(code, count=len(row), width=layout.width)

    def number(col: int | None) -> float | None:
        return None if col is None or col >= len(row) else _seconds(row[col])

    start, end = number(layout.start), number(layout.end)
    if not layout.header and (start is None) != (end is None):  # path, text, duration?
        raise RowError("dataset.row_no_header_half_span", count=len(row))
    path = Path(_unquoted(row[layout.path]))
    audio = path if path.is_absolute() else folder / path
    if not audio.exists() and (folder / "clips" / path).is_file():
        audio = folder / "clips" / path  # a Common Voice .tsv names the files in clips/
    return Example(audio, row[layout.text].strip(), start, end, origin=origin)


def _seconds(value: object) -> float | None:
    """A start, end, offset or duration in seconds: a number, or text holding one (a TSV cell,
    a JSON string such as "0.5"); None when absent or blank. RowError otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RowError("dataset.row_bad_time", value=value)
    try:
        return float(value)
    except ValueError:
        raise RowError("dataset.row_bad_time", value=value) from None


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
    or those four in that order), or JSON lines (`_from_json_lines`), in UTF-8, UTF-16 or GBK
    (`_read_text`). Relative paths
    resolve against the manifest's folder, or its clips/ folder where only that holds the file
    (a Common Voice .tsv). A TSV quote is text; a CSV cell may be quoted, and a row whose quote
    closes only on a later line is reported, never merged with the rows in between.
    DatasetError "dataset.source_is_audio" for a recording given in its place (by its
    extension), and "dataset.manifest_missing" or "dataset.manifest_is_folder" for a path that
    is not a file (export --check's typo), not a complaint about its text encoding."""
    manifest = Path(manifest)
    if manifest.is_dir():  # Windows reads a folder as PermissionError, not IsADirectoryError
        raise DatasetError("dataset.manifest_is_folder", path=manifest)
    if not manifest.exists():
        raise DatasetError("dataset.manifest_missing", path=manifest)
    if manifest.is_file() and manifest.suffix.lower() in _audio_extensions():
        raise DatasetError("dataset.source_is_audio", path=manifest)
    try:
        text = _read_text(manifest)
    except UnicodeDecodeError as e:
        raise DatasetError("dataset.text_encoding", path=manifest) from e
    except OSError as e:
        raise DatasetError("dataset.manifest_unreadable", path=manifest, detail=str(e)) from e
    if text.lstrip().startswith("{"):
        return _from_json_lines(manifest, text)
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
    return TuneDataset(examples, str(manifest), [*problems, *_recorded_problems(manifest)])


def _from_json_lines(manifest: Path, text: str) -> TuneDataset:
    """A JSON-lines manifest (HF datasets' and NeMo's exports): an object per line naming the
    audio and its text (`_JSON_PATH_KEYS`, `_JSON_TEXT_KEYS`), optionally a span as start and
    end, or NeMo's offset and duration. A line that is no such object is a finding of its own."""
    examples, problems = [], []
    for number, line in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        if not line.strip():
            continue
        origin = f"{manifest.name}:{number}"
        try:
            examples.append(_json_row(line, manifest.parent, origin))
        except ValueError as e:
            problems.append(Finding.from_error(origin, "bad_row", e))
    return TuneDataset(examples, str(manifest), [*problems, *_recorded_problems(manifest)])


def _json_row(line: str, folder: Path, origin: str) -> Example:
    """One JSON-lines row as an Example; RowError says what is wrong with it."""
    try:
        record = json.loads(line)
    except ValueError as e:
        raise RowError("dataset.row_bad_json", detail=str(e)) from None
    if not isinstance(record, dict):
        raise RowError("dataset.row_bad_json", detail=f"a JSON {type(record).__name__}")
    text_key = next((k for k in _JSON_TEXT_KEYS if k in record), None)
    paths = [(k, record[k]) for k in _JSON_PATH_KEYS if k in record]
    if not paths or text_key is None:
        raise RowError(
            "dataset.row_json_keys",
            keys=", ".join(record) or "none",
            path_names=", ".join(_JSON_PATH_KEYS),
            text_names=", ".join(_JSON_TEXT_KEYS),
        )
    if not isinstance(record[text_key], str):
        raise _not_a_string(text_key, record[text_key], "…")
    start, end = _seconds(record.get("start")), _seconds(record.get("end"))
    if start is None and end is None and "offset" in record:  # NeMo: duration is the span's
        start, length = _seconds(record["offset"]), _seconds(record.get("duration"))
        end = None if start is None or length is None else start + length
    audio = _json_audio(paths, folder)
    return Example(audio, record[text_key].strip(), start, end, origin)


def _json_audio(paths: list[tuple[str, object]], folder: Path) -> Path:
    """The audio a JSON-lines row names under `paths` (its path keys present, most specific
    first): the first that exists, else the first given. HF's Common Voice export names the
    clip twice, as a bare file name in its Audio feature ({"path": …, "array": …}) and as an
    absolute path beside it; only one of them is where the file lies."""
    found: list[Path] = []
    bad: tuple[str, object] | None = None
    for key, value in paths:
        if isinstance(value, dict):
            key, value = f"{key}.path", value.get("path")
        if isinstance(value, str) and value:
            path = Path(value)
            found.append(path if path.is_absolute() else folder / path)
        elif bad is None:
            bad = key, value
    if not found:
        raise _not_a_string(*bad, "clips/a.wav")
    return next((p for p in found if p.exists()), found[0])


def _not_a_string(key: str, value: object, example: str) -> RowError:
    """RowError for a JSON-lines key whose value is no (non-empty) string: the key, its value
    as written, and how to write it."""
    shown = json.dumps(value, ensure_ascii=False)
    shown = shown if len(shown) <= 40 else shown[:39] + "…"
    return RowError("dataset.row_json_not_a_string", key=key, value=shown, example=example)


def import_problems_file(manifest: Path) -> Path:
    """Where `write_import_problems` keeps the rows a manifest's sources could not import."""
    return manifest.with_name(manifest.stem + ".problems.json")


def write_import_problems(manifest: Path, problems: Sequence[Finding]) -> None:
    """Keep, beside a manifest combined from several sources, the rows those could not import
    (an audio without its .txt, a bad row), so that reading it lists them as its sources did."""
    rows = [{n: getattr(f, n) for n in _FINDING_FIELDS} for f in problems]
    text = json.dumps(rows, ensure_ascii=False, indent=1, default=str)
    atomic_write_text(import_problems_file(manifest), text + "\n")


_FINDING_FIELDS = ("origin", "kind", "detail", "skipped", "code", "params")


def _recorded_problems(manifest: Path) -> list[Finding]:
    """The findings `write_import_problems` kept beside `manifest` (none: not there, or not
    readable, logged)."""
    path = import_problems_file(manifest)
    if not path.is_file():
        return []
    try:
        return [Finding(**row) for row in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError) as e:
        log.warning("%s: not read (%s); the rows its sources left out are not listed", path, e)
        return []


def from_common_voice(folder: str | Path, split: str = "train") -> TuneDataset:
    """The Common Voice layout: `<split>.tsv` (columns path, sentence) beside a `clips/` folder."""
    folder = Path(folder)
    tsv = folder / f"{split}.tsv"
    _check_common_voice_layout(folder, tsv)
    dataset = from_manifest(tsv)
    examples = [replace(e, audio=folder / "clips" / e.audio.name) for e in dataset.examples]
    return TuneDataset(examples, str(folder), dataset.import_problems)


def _check_common_voice_layout(folder: Path, tsv: Path) -> None:
    """Raise the error naming what `folder` holds and what it lacks of `tsv` beside clips/, so
    the way out is plain: extract the clips, or add another of its .tsv files as a manifest."""
    has_clips = (folder / "clips").is_dir()
    if has_clips and tsv.is_file():
        return
    tables = sorted(folder.glob("*.tsv"))
    if has_clips and tables:
        found = ", ".join(p.name for p in tables)
        raise DatasetError("dataset.common_voice_no_tsv", folder=folder, tsv=tsv.name, found=found)
    holds = [tsv] if tsv.is_file() else [p for p in tables if _is_common_voice_tsv(p)]
    if holds:
        found = ", ".join(p.name for p in holds)
        raise DatasetError("dataset.common_voice_no_clips", folder=folder, found=found)
    raise DatasetError("dataset.not_common_voice", folder=folder, tsv=tsv.name)


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


SourceKind = Literal["manifest", "common_voice", "folder", "missing"]


def _is_common_voice_tsv(path: Path) -> bool:
    """Whether `path`'s first line names Common Voice's columns path and sentence (read alone:
    a validated.tsv runs to hundreds of megabytes)."""
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as f:
            header = f.readline().rstrip("\r\n").split("\t")
    except OSError:
        return False
    return {"path", "sentence"} <= set(_column_names(header))


def source_kind(source: str | Path) -> SourceKind:
    """What `load_dataset` reads `source` as: a manifest (a file, or a folder holding a
    manifest.tsv: a training set Review wrote), a Common Voice folder (clips/ beside .tsv
    files, or a .tsv naming its columns path and sentence, so that one whose clips/ is missing
    is told so), a folder of audio + .txt, or nothing."""
    path = Path(source)
    if path.is_file() or (path / "manifest.tsv").is_file():
        return "manifest"
    if not path.is_dir():
        return "missing"
    tables = list(path.glob("*.tsv"))
    if tables and ((path / "clips").is_dir() or any(map(_is_common_voice_tsv, tables))):
        return "common_voice"
    return "folder"


def checked_source(source: str | Path) -> SourceKind:
    """`source_kind`, but DatasetError "dataset.source_missing" for nothing there: a tuning job
    tells a mistyped data path before it claims its output_dir and loads its model."""
    kind = source_kind(source)
    if kind == "missing":
        raise DatasetError("dataset.source_missing", source=Path(source))
    return kind


def load_dataset(source: str | Path) -> TuneDataset:
    """Pick the importer from what `source` is (`checked_source`)."""
    source = Path(source)
    kind = checked_source(source)
    if kind == "manifest":
        return from_manifest(source if source.is_file() else source / "manifest.tsv")
    if kind == "common_voice":
        return from_common_voice(source)
    return from_folder(source)


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
    def left_out(self) -> int:
        """Rows that will not train (a row may have several findings)."""
        return self.total - len(self.kept)

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
    # how a transcript is normalized to tell whether any text is left (`empty_text`); a tuning
    # job's are normalized already, with its own options
    normalize: NormalizeOptions = field(default_factory=NormalizeOptions)


def empty_text(example: Example, normalize: NormalizeOptions) -> Finding | None:
    """The finding for a row whose transcript `normalize` leaves empty (blank, or punctuation
    only: "。"), None for one with text: such a row has nothing to train on and no CER (scored,
    each character a model writes for it would count as an insertion)."""
    if normalize_text(example.text, normalize):
        return None
    return Finding.coded("dataset.row_empty_text", example.where, "empty_text")


def _check_example(
    e: Example, vocab: set[str] | None, options: ValidationOptions, duration_of: Callable
) -> tuple[list[Finding], float | None, str]:
    """Findings for one example, its duration (None if unreadable) and its unknown characters."""
    from engine.audio import AudioError

    origin = e.where
    if not e.audio.is_file():
        missing = Finding.coded("dataset.row_audio_missing", origin, "missing_audio", path=e.audio)
        return [missing], None, ""
    try:
        seconds = duration_of(e)
    except (AudioError, OSError, ValueError) as err:
        return [Finding.from_error(origin, "unreadable_audio", err)], None, ""
    findings = []
    unknown = "" if vocab is None else "".join(dict.fromkeys(c for c in e.text if c not in vocab))
    if empty := empty_text(e, options.normalize):
        findings.append(empty)
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


def _repeats(examples: Sequence[Example]) -> dict[int, Finding]:
    """Findings by index for usable rows holding the audio (and span) another one holds
    (`Example.content_key`: also a copy under another name, clips/00000.wav of two training
    sets made from one recording). A repeat of an earlier row's transcript is left out, so the
    clip trains once; rows giving it different transcripts train as they are, each flagged
    with the others' rows, since only the user knows which is right."""
    rows: defaultdict[str, dict[str, list[int]]] = defaultdict(dict)
    for i, e in enumerate(examples):
        rows[e.content_key or e.id].setdefault(e.text, []).append(i)
    found = {}
    for texts in rows.values():
        for first, *again in texts.values():
            for i in again:
                where = examples[first].where
                found[i] = Finding.coded(
                    "dataset.row_repeated", examples[i].where, "bad_row", first=where
                )
        firsts = [same[0] for same in texts.values()]
        for i in firsts if len(firsts) > 1 else ():
            others = ", ".join(examples[j].where for j in firsts if j != i)
            found[i] = Finding.coded(
                "dataset.row_conflicting", examples[i].where, "bad_row", False, others=others
            )
    return found


def validate(
    dataset: TuneDataset,
    vocab: Iterable[str] | None,
    options: ValidationOptions | None = None,
    *,
    duration_of: Callable[[Example], float] = _duration,
) -> ValidationReport:
    """Check every example; the report keeps the usable ones and lists the rest by row
    (`vocab` None: every character can be written). Its total counts the rows the importer
    left out too. Raises DatasetError only when no example is usable, or there is none."""
    options = options or ValidationOptions()
    vocab = None if vocab is None else set(vocab)
    problems = dataset.import_problems
    total = len(dataset.examples) + sum(f.skipped for f in problems)
    if not total:
        raise DatasetError("dataset.no_rows", source=dataset.source or "dataset")
    report = ValidationReport([], list(problems), total)
    for e in dataset.examples:
        findings, seconds, unknown = _check_example(e, vocab, options, duration_of)
        report.findings.extend(findings)
        for c in unknown:
            report.unknown_chars[c] += e.text.count(c)
            report.unknown_examples.setdefault(c, []).append(e.where)
        if seconds is not None:
            report.durations[e.id] = seconds
        if not any(f.skipped for f in findings):
            report.kept.append(e)
    repeats = _repeats(report.kept)
    report.findings.extend(repeats[i] for i in sorted(repeats))
    report.kept = [
        e for i, e in enumerate(report.kept) if not (i in repeats and repeats[i].skipped)
    ]
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
