"""`tingxie-cli transcribe`: audio and video files → TXT / SRT / VTT / JSON transcripts."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from engine.atomic import folder_problem
from engine.audio import AudioError, probe
from engine.extras import install_hint
from engine.lm import BeamOptions, LmError, check_decoding_files, describe_decoder
from engine.loader import load_model, transcriber_for
from engine.model import DEFAULT_MODEL, DEMO_MODEL_DIR, LoadOptions, ModelLoadError
from engine.punctuation import PunctuationError, Punctuator, default_punctuator, without_marks
from engine.registry import local_path
from engine.results import Progress, Segment, TranscriptionInfo
from engine.speakers import SpeakerOptions, SpeakersUnavailable
from engine.transcribe import TranscribeOptions, Transcriber
from engine.watch import media_files, unique_base
from engine.whisper import WHISPER_BASE_DIR, is_whisper
from engine.writers import FORMATS, write_all

from . import ALLOW_PICKLE_HELP, BACKEND_HELP, INT8_AUTO_HELP, positive_int

log = logging.getLogger("tingxie.cli")

EPILOG = f"""\
examples:
  tingxie-cli transcribe meeting.m4a
      write meeting.txt next to the recording (a meeting.txt already there is kept, and
      the recording fails naming it: add --overwrite to replace it)
  tingxie-cli transcribe *.wav talk.mp4 --format srt,json --out transcripts/
      subtitles and a full JSON (per-character confidence, times, alternatives) per file
  tingxie-cli transcribe lecture.flac --model resources/demo-model
      use a local model folder instead of the default
  tingxie-cli transcribe lecture.flac --device cuda --batch-size 16
  tingxie-cli transcribe ward-round.wav --model resources/demo-model --domain-text notes.txt \
      --hotwords terms.txt
      beam search with the model's language model mixed with one built from your domain's
      text (cached), favouring the terms listed (one a line, optional weight after a tab)
  tingxie-cli transcribe memo.m4a --model .cache/models/whisper-base --prompt "会议记录。"
      a Whisper model in CTranslate2 format (packaging/fetch-whisper-base.py fetches base)
  tingxie-cli transcribe interview.wav --no-punctuation
      the characters alone, without the ，。？！、 the punctuation model adds (or a Whisper
      model writes)

Punctuation is restored by a small model trained from punctuated text, helped by the pauses
between characters; it only adds marks after characters (JSON: each character's "after"),
never changes one. Whisper writes its own punctuation, which is kept as it is (and left out
with --no-punctuation).

The default model, {DEFAULT_MODEL},
is downloaded into the Hugging Face cache on first use (about 1.3 GB). Files that cannot be
read are reported and skipped; the exit status is 0 when every file was transcribed, 1 when
some failed, 2 when the model could not be loaded or the options are wrong. Among several
inputs (dir/*), text files named like transcripts (.txt .srt .vtt .json, not audio by their
content: an earlier run's transcripts) are skipped with a note.
"""


def _formats(text: str) -> list[str]:
    fmts = [f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()]
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        raise argparse.ArgumentTypeError(
            f"unknown format {', '.join(bad) or repr(text)}; choose from {','.join(FORMATS)}"
        )
    return list(dict.fromkeys(fmts))


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "transcribe",
        help="transcribe audio or video files",
        description="Transcribe Mandarin speech in audio or video files (wav, flac, ogg, opus, "
        "mp3, m4a, aac, mp4, mkv, mov, …) into text where every character carries a "
        "confidence, a time span and the model's alternatives.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "files", nargs="+", metavar="FILE|DIR", help="audio or video files, or folders of them"
    )
    p.add_argument(
        "--recursive",
        action="store_true",
        help="take the audio and video files of a folder's subfolders too (their folder "
        "layout is kept under --out)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace files that already exist where transcripts go (default: such a file, "
        "an earlier run's transcript or your own notes named like one, is kept, and its "
        "recording fails with an error naming it)",
    )
    add_transcription_options(p)
    p.set_defaults(run=run)


def add_transcription_options(p: argparse.ArgumentParser) -> None:
    """The model, output and decoding options `transcribe` and `watch` share."""
    defaults = TranscribeOptions()
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        metavar="ID|DIR",
        help="Hugging Face model id or local checkpoint folder (default: %(default)s)",
    )
    p.add_argument(
        "--format",
        type=_formats,
        default=["txt"],
        metavar="FMT[,FMT…]",
        help=f"output formats, comma-separated, from {','.join(FORMATS)} (default: txt)",
    )
    p.add_argument(
        "--out",
        type=local_path,
        metavar="DIR",
        help="output folder (default: next to each input file)",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--allow-pickle", action="store_true", help=ALLOW_PICKLE_HELP)
    p.add_argument(
        "--backend", choices=("auto", "torch", "onnx"), default="auto", help=BACKEND_HELP
    )
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default="auto",
        help="auto: bf16 where the CPU/GPU runs it natively, else fp32 (CPU) or fp16 (GPU); "
        f"with --backend auto, {INT8_AUTO_HELP}; --precision fp32 or --backend torch keeps fp32; "
        "a Whisper model runs fp16 and bf16 only where CTranslate2 supports them (GPUs)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=defaults.batch_size,
        metavar="N",
        help=f"chunks of {defaults.chunk_seconds:g} s run together "
        "(default: 4 on a CPU, 16 on a GPU)",
    )
    p.add_argument(
        "--confidence",
        default=defaults.confidence,
        metavar="MEASURE",
        help="confidence measure as measure[:alpha[:aggregation]], e.g. max_prob "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--no-punctuation",
        action="store_true",
        help="write the characters alone: no punctuation restored, and a Whisper model's own "
        "left out (default: add ，。？！、)",
    )
    p.add_argument(
        "--decoder",
        choices=("auto", "greedy", "beam"),
        default=defaults.decoder,
        help="CTC models: auto = beam search with the language model when the model folder has "
        "one (lm/) or --domain-text/--hotwords are given, else greedy; greedy = the model's "
        "best character per frame, no language model (default: %(default)s)",
    )
    p.add_argument(
        "--domain-text",
        metavar="FILE",
        help="CTC models: a plain text file of your domain's sentences; a language model built "
        "from it (seconds, cached by content) is mixed with the model's own",
    )
    p.add_argument(
        "--hotwords",
        metavar="FILE",
        help="CTC models: terms to favour, one a line, optionally followed by a tab and a "
        f"weight (nats per character, default {BeamOptions().hotword_weight:g})",
    )
    p.add_argument(
        "--prompt",
        default=defaults.initial_prompt,
        metavar="TEXT",
        help="Whisper models: text the decoder continues from (script, punctuation, names and "
        "terms); CTC models ignore it (default: %(default)s)",
    )
    p.add_argument(
        "--speakers",
        type=_speakers,
        metavar="auto|N",
        help="tell speakers apart: auto finds how many there are, N says; each segment then "
        "carries its speaker (TXT 说话人 1：, SRT name, VTT voice tag, JSON speaker) "
        f"(default: off; needs the speakers extra: run {install_hint('speakers')} in the "
        "Tingxie source folder)",
    )


def _speakers(text: str) -> SpeakerOptions:
    if text.strip().lower() == "auto":
        return SpeakerOptions()
    try:
        return SpeakerOptions(speakers=positive_int(text))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give auto, or the number of speakers (a whole number ≥ 1)"
        ) from None


def _fallback_hint(model: str) -> str:
    """The default model missing (offline): the models on this computer to try instead,
    Whisper-base first where it was fetched (it understands real voices), then the demo."""
    if model != DEFAULT_MODEL:
        return ""
    ways = []
    if (WHISPER_BASE_DIR / "model.bin").is_file():
        ways.append(f"--model {_from_here(WHISPER_BASE_DIR)} (Whisper-base, for real voices)")
    if DEMO_MODEL_DIR.is_dir():
        demo = _from_here(DEMO_MODEL_DIR)
        ways.append(f"--model {demo} (the bundled demo model, trained on synthetic speech)")
    return f"; try {', or '.join(ways)}" if ways else ""


def _from_here(folder: Path) -> str:
    """`folder` relative to the working directory (shorter to type), else as it is."""
    try:
        return os.path.relpath(folder)
    except ValueError:  # another drive on Windows
        return str(folder)


class OutputError(Exception):
    """A transcript cannot be written where it should go; the message names the file or folder
    and what to do."""


def _output_base(path: Path, out: Path | None, used: set[Path]) -> Path:
    """Where a file's transcripts go (suffix added per format), in its folder as typed; unique
    within one run however the folder is typed (`used` holds resolved paths: rec/talk.wav and
    /home/me/rec/talk.mp3 get talk and talk-2)."""
    folder = out or path.parent
    base = unique_base(folder.resolve() / path.stem, used)
    used.add(base)
    return folder / base.name


def _targets(base: Path, fmts: list[str]) -> list[Path]:
    """The transcript files of one input, one per format."""
    return [base.with_name(f"{base.name}.{fmt}") for fmt in fmts]


def _check_folder(folder: Path) -> None:
    """Found before the model runs, not after: a folder nothing can be written in."""
    problem = folder_problem(folder)
    if problem is not None:
        raise OutputError(
            f"{folder}: nothing can be written there ({problem}); make it a writable folder, "
            "or choose another with --out DIR"
        )


def _check_not_inputs(path: Path, targets: list[Path], inputs: set[Path]) -> None:
    """Refuse to write a transcript over an input: files are recognized by their content, so a
    recording may be named memo.txt, and its transcript would replace it."""
    for target in targets:
        if target.resolve() in inputs:
            raise OutputError(
                f"{path}: its transcript {target} would replace an input file (audio, by its "
                "content); write the transcripts to another folder with --out DIR, or name "
                f"that recording for its type (e.g. {target.stem}.wav)"
            )


# What to do about a folder named like a transcript (`folder_in_the_way`).
_MOVE_THE_FOLDER = (
    "a transcript never replaces one, not even with --overwrite: rename or move that folder, "
    "or write the transcripts to another folder with --out DIR"
)


def folder_in_the_way(targets: Iterable[Path], instead: str) -> str | None:
    """Why a file cannot be written at one of `targets` even with --overwrite: a folder has its
    name (writing over one fails "Is a directory", once the work is done); None when none has.
    `instead`: what to do (`library --export`: give a file name)."""
    folder = next((t for t in targets if t.is_dir()), None)
    return None if folder is None else f"{folder}: that is a folder; {instead}"


# The other way out of a transcript name already taken (`check_new`).
_ANOTHER_FOLDER = "write the transcripts to another folder with --out DIR"


def check_new(targets: list[Path], instead: str = _ANOTHER_FOLDER) -> None:
    """Refuse to replace a file that was there before this run (an earlier run's transcript,
    or the user's own notes named like one), before the model runs; --overwrite allows it.
    `instead`: the other way out (`library --export`: another FILE)."""
    there = [t for t in targets if t.exists()]
    if there:
        raise _already_there(there, instead)


def _already_there(there: list[Path], instead: str) -> OutputError:
    """`check_new`'s refusal of the files `there`."""
    verb = "already exists" if len(there) == 1 else "already exist"
    return OutputError(
        f"{', '.join(map(str, there))} {verb}; add --overwrite to replace "
        f"{'it' if len(there) == 1 else 'them'}, or {instead}"
    )


def _check_targets(path: Path, targets: list[Path], inputs: set[Path], overwrite: bool) -> None:
    """Raise OutputError when `path`'s transcripts cannot go to `targets`: one would replace an
    input or a folder, or a file already there (unless `overwrite`)."""
    _check_not_inputs(path, targets, inputs)
    problem = folder_in_the_way(targets, _MOVE_THE_FOLDER)
    if problem is not None:
        raise OutputError(problem)
    if not overwrite:
        check_new(targets)


def _write_all(
    segments: list[Segment], targets: list[Path], info: TranscriptionInfo, overwrite: bool = True
) -> list[Path]:
    """`write_transcripts`, for `transcribe`: without `overwrite`, a file made there since
    `check_new` looked (another run writing the same name at once) is not replaced either: the
    same refusal, nothing of this input written."""
    try:
        return write_transcripts(segments, targets, info, overwrite)
    except FileExistsError as e:
        raise _already_there([Path(e.filename)], _ANOTHER_FOLDER) from e


def write_transcripts(
    segments: list[Segment], targets: list[Path], info: TranscriptionInfo, replace: bool
) -> list[Path]:
    """Write the transcripts of one input together (engine.atomic.atomic_write_files): when
    one cannot be (a full disk), none is new and those there stay as they were, which the
    OutputError says, naming the files and what to do. Without `replace`, a file there raises
    FileExistsError as it is, nothing written: `transcribe` refuses it (`_write_all`), a watch
    takes the next name (`FolderWatch.publish`)."""
    try:
        write_all(segments, targets, info, replace=replace)
    except FileExistsError:
        raise
    except OSError as e:
        raise OutputError(
            f"{', '.join(map(str, targets))}: could not be written ({e.strerror or e}), so "
            "none was changed; free some space, or choose a writable folder with --out DIR"
        ) from e
    return targets


def _transcribe_one(
    transcriber: Transcriber,
    path: Path,
    options: TranscribeOptions,
    punctuator: Punctuator | OwnMarks | None = None,
    speakers: SpeakerOptions | None = None,
) -> tuple[list[Segment], TranscriptionInfo]:
    """`path`'s finished segments (speakers told apart when asked, punctuated or without
    marks) and its info, for the caller to write: `transcribe` where it planned
    (`_write_all`), a watch under the next free name (`FolderWatch.publish`)."""
    stream, info = transcriber.transcribe(path, options)
    segments: list[Segment] = []
    last: Progress | None = None
    with tqdm(
        total=round(info.duration, 1),
        unit="s",
        desc=path.name,
        file=sys.stderr,
        leave=True,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s audio "
        "[{elapsed}<{remaining}]",
    ) as bar:
        for item in stream:
            if isinstance(item, Segment):
                segments.append(item)
            elif isinstance(item, Progress):
                bar.total = round(item.total, 1)  # grows where the duration was an estimate
                bar.update(round(item.done, 1) - bar.n)
                last = item
    info = info.decoded(last)  # the length read, not the header's guess, bounds the last cue
    if speakers is not None:
        segments = _with_speakers(path, segments, speakers)
    # No punctuator (--no-punctuation): the characters alone, Whisper's own marks left out.
    segments = punctuator.punctuate(segments) if punctuator else without_marks(segments)
    return segments, info


def _with_speakers(path: Path, segments: list[Segment], options: SpeakerOptions) -> list[Segment]:
    """Segments with their speakers (engine.speakers.label_speakers), the count reported. When
    telling them apart fails (memory on a long file, an engine bug), the finished transcript is
    kept without speakers, as the app keeps it, and the line says it was the speaker step."""
    from engine.speakers import label_speakers

    try:
        segments = label_speakers(path, segments, options)
    except Exception as e:  # the text is done: losing it to the optional step helps no one
        log.debug("telling the speakers of %s apart failed", path, exc_info=True)
        print(
            f"warning: {path}: speakers not told apart ({_first_line(e)}); transcript written "
            "without them",
            file=sys.stderr,
        )
        return segments
    found = len({s.speaker for s in segments if s.speaker is not None})
    print(f"{path.name}: {found} speaker{'s' if found != 1 else ''}", file=sys.stderr)
    return segments


def prepare(
    args: argparse.Namespace,
) -> tuple[Transcriber, TranscribeOptions, Punctuator | OwnMarks | None] | int:
    """Options checked, output folder made and found writable, models loaded (speech, and
    punctuation unless --no-punctuation); or the exit status of a failure."""
    checked = _checked_options(args)
    if isinstance(checked, int):
        return checked
    return _check_out(args) or _load_models(args, *checked)


def _checked_options(args: argparse.Namespace) -> tuple[TranscribeOptions, LoadOptions] | int:
    """The options checked, --hotwords and --domain-text found readable and --speakers'
    packages found, before any input is looked at or a model loads; or 2, the error printed."""
    try:
        options = TranscribeOptions(
            batch_size=args.batch_size,
            confidence=args.confidence,
            initial_prompt=args.prompt,
            decoder=args.decoder,
            domain_text=_home_expanded(args.domain_text),
            hotwords=_home_expanded(args.hotwords),
        )
        if not is_whisper(args.model):  # Whisper reads neither: its warning says so
            check_decoding_files(options.decoder, options.domain_text, options.hotwords)
        load = LoadOptions(
            device=args.device,
            precision=args.precision,
            allow_pickle=args.allow_pickle,
            backend=args.backend,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.speakers is not None:
        from engine.speakers import ensure_available

        try:
            ensure_available(args.speakers)
        except SpeakersUnavailable as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return options, load


def _home_expanded(path: str | None) -> str | None:
    """A file option's path with a leading ~ expanded, as the inputs' are (`_expand`): a
    shell that passes it quoted, or none (cmd.exe, PowerShell), leaves it to us."""
    return str(local_path(path)) if path else path


def _check_out(args: argparse.Namespace) -> int:
    """0 when --out is made and found writable (or not given); else 2, the error printed."""
    if args.out is not None:
        try:
            _check_folder(args.out)
        except OutputError as e:
            print(f"error: --out {e}", file=sys.stderr)
            return 2
    return 0


def _load_models(
    args: argparse.Namespace, options: TranscribeOptions, load: LoadOptions
) -> tuple[Transcriber, TranscribeOptions, Punctuator | OwnMarks | None] | int:
    """The punctuation and speech models loaded and the decoder made; or 2, the error
    printed. The punctuation model is loaded first (a damaged one is told before minutes of
    a download), except for a Whisper model, which does not use it."""
    from transformers.utils import logging as hf_logging

    try:
        early = None
        if not args.no_punctuation and not is_whisper(args.model):
            early = default_punctuator()
    except PunctuationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    hf_logging.disable_progress_bar()  # one bar per file is ours; no weight-loading bars
    try:
        model = load_model(args.model, load)
    except ModelLoadError as e:
        print(f"error: {e}{_fallback_hint(args.model)}", file=sys.stderr)
        return 2
    try:
        punctuator = _punctuator_for(model, args.no_punctuation, early)
    except PunctuationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    transcriber = transcriber_for(model)
    print(
        f"model {args.model} on {model.device} ({model.precision}, {model.attention})",
        file=sys.stderr,
    )
    if unused := precision_unused(args, model):
        print(f"warning: {unused}", file=sys.stderr)
    if isinstance(transcriber, Transcriber):
        try:
            beam = transcriber.beam_decoder(options)
        except LmError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"decoder: {describe_decoder(beam)}", file=sys.stderr)
        if beam is None and (args.domain_text or args.hotwords):
            print(
                "warning: --domain-text and --hotwords are read by the beam search and are not "
                "used with --decoder greedy; leave --decoder out to use them",
                file=sys.stderr,
            )
    elif unused := not_for_whisper(args):  # a typo'd path would pass unnoticed otherwise
        print(f"warning: {whisper_ignores(unused, args.model)}; give it context with --prompt",
              file=sys.stderr)  # fmt: skip
    return transcriber, options, punctuator


class OwnMarks:
    """The punctuator of a model that writes its own marks (Whisper): its segments are kept as
    they are. The punctuation model added marks to those without one, guessing with no context,
    though the help and README say Whisper's own are kept (the app greys the item out)."""

    def punctuate(self, segments: list[Segment]) -> list[Segment]:
        return segments


def _punctuator_for(
    model: object, no_punctuation: bool, loaded: Punctuator | None = None
) -> Punctuator | OwnMarks | None:
    """What punctuates `model`'s segments: nothing with --no-punctuation (`_transcribe_one`
    then leaves every mark out), `OwnMarks` for a model whose family has no "punctuation"
    feature (engine.registry), else the punctuation model (`loaded`, or loaded now)."""
    if no_punctuation:
        return None
    features = getattr(getattr(model, "family", None), "features", {"punctuation"})
    if "punctuation" not in features:
        return OwnMarks()
    return loaded or default_punctuator()


# The options of `transcribe` and `evaluate` a Whisper model does not read, with the value that
# leaves each unset: CTranslate2 is its one runtime, it decodes 30 s windows by its own beam
# search and its confidence is that of its words (engine.whisper)
_CTC_ONLY = {
    "decoder": TranscribeOptions().decoder,
    "domain_text": None,
    "hotwords": None,
    "confidence": TranscribeOptions().confidence,
    "backend": "auto",
    "batch_size": TranscribeOptions().batch_size,
}


def not_for_whisper(args: argparse.Namespace) -> list[str]:
    """The options set in `args` that a Whisper model does not read, as the command line
    spells them (a command without one of them has it unset)."""
    return [
        "--" + name.replace("_", "-")
        for name, unset in _CTC_ONLY.items()
        if getattr(args, name, unset) != unset
    ]


def whisper_ignores(options: list[str], model: str) -> str:
    """What a warning says of `options` (from `not_for_whisper`) with the Whisper `model`."""
    return (
        f"{', '.join(options)} {'is' if len(options) == 1 else 'are'} for CTC models and not "
        f"used with {model} (Whisper decodes with its own beam search on CTranslate2)"
    )


def precision_unused(args: argparse.Namespace, model: object) -> str | None:
    """What a warning says when --precision asks for a half precision that the loaded `model`
    does not run in: ONNX Runtime runs an export (model.onnx) in fp32 on the CPU whatever it
    asks (engine.model); None otherwise. `transcribe` and `watch` share it."""
    if getattr(args, "precision", "auto") not in ("fp16", "bf16"):
        return None
    if getattr(model, "runtime", "torch") != "onnx":
        return None
    return (
        f"--precision {args.precision} is not used with {args.model}: its ONNX export runs in "
        "fp32 on ONNX Runtime (CPU); --backend torch runs the folder's PyTorch weights, "
        "where it has them, in that precision"
    )


def _expand(names: list[str], recursive: bool) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(file, its folder's place under --out) for every input, and the inputs that do not
    exist, each reported here: a typo is told before a model loads (offline, the model's error
    would hide it). A folder gives its media files, counted before anything starts. Among
    several inputs, a transcript is skipped."""
    inputs, missing = [], []
    for name in names:
        path = local_path(name)  # ~ quoted: the folder ~/d was taken for a file
        if path.is_dir():
            found = media_files(path, recursive)
            note = "" if found or recursive else _in_subfolders(path)
            print(f"{path}: {len(found)} audio and video files{note}", file=sys.stderr)
            inputs += [(f, f.parent.relative_to(path)) for f in found]
        elif not path.exists():
            print(failure_line(path, AudioError("audio.missing", path=path)), file=sys.stderr)
            missing.append(name)
        elif len(names) > 1 and _is_transcript(path):
            print(f"{path}: skipped, a transcript or other text file, not audio", file=sys.stderr)
        else:
            inputs.append((path, Path()))
    return _unique(inputs), missing


def _unique(inputs: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    """Each file once, at its first mention: one given twice (a.wav ./a.wav, or a folder and a
    file in it) was transcribed twice, into a.txt and a-2.txt. Said in one line."""
    kept: dict[Path, tuple[Path, Path]] = {}
    for path, place in inputs:
        kept.setdefault(path.resolve(), (path, place))
    if dropped := len(inputs) - len(kept):
        print(f"{dropped} input{'s' if dropped > 1 else ''} given more than once, "
              "transcribed once", file=sys.stderr)  # fmt: skip
    return list(kept.values())


def _in_subfolders(folder: Path) -> str:
    """For a folder that gave no files: how many its subfolders hold, and how to take them."""
    below = len(media_files(folder, recursive=True))
    return f" ({below} in its subfolders: add --recursive to take them)" if below else ""


def _is_transcript(path: Path) -> bool:
    """Named like a transcript and not audio by its content: picked up by a glob over a folder
    transcribed before (dir/*). A recording named memo.txt is still transcribed."""
    if path.suffix.lower().lstrip(".") not in FORMATS:
        return False
    try:
        probe(path)
    except AudioError as e:
        return e.code == "audio.unrecognized"
    return False


def run(args: argparse.Namespace) -> int:
    checked = _checked_options(args)
    if isinstance(checked, int):
        return checked
    inputs, missing = _expand(args.files, args.recursive)
    if not inputs:  # nothing to load a model for
        if not missing:
            print("error: no audio or video files to transcribe", file=sys.stderr)
        return 1
    if _check_out(args):
        return 2
    planned, refused = _plan(inputs, args)
    failures = missing + refused
    if planned:  # else nothing to load a model for
        prepared = _load_models(args, *checked)
        if isinstance(prepared, int):
            return prepared
        transcriber, options, punctuator = prepared
        try:
            failures += _transcribe_all(transcriber, planned, args, options, punctuator)
        except KeyboardInterrupt:
            print("interrupted: transcripts already written are kept", file=sys.stderr)
            return 130
    total = len(missing) + len(inputs)
    print(f"{total - len(failures)} of {total} files transcribed", file=sys.stderr)
    return summary(failures)


def failure_line(path: Path | str, error: BaseException) -> str:
    """One line for a file that failed, naming it once (many messages name it already)."""
    message = _first_line(error)
    return f"error: {message}" if str(path) in message else f"error: {path}: {message}"


def _first_line(error: BaseException) -> str:
    """An error's first line, or its type's name when it has no message."""
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def summary(failures: list[str]) -> int:
    """Name the files that failed once more at the end (each message was printed when it
    happened); the exit status: 1 when any failed."""
    if not failures:
        return 0
    print("failed:\n" + "\n".join(f"  {f}" for f in failures), file=sys.stderr)
    return 1


def _plan(
    inputs: list[tuple[Path, Path]], args: argparse.Namespace
) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Each input with where its transcripts go (`_output_base`); those that cannot go there
    (`_check_targets`) are reported, each on one line, and returned apart: told before the
    model loads, not after it ran."""
    planned: list[tuple[Path, Path]] = []
    refused: list[str] = []
    used: set[Path] = set()
    sources = {path.resolve() for path, _ in inputs}
    for path, place in inputs:
        base = _output_base(path, args.out / place if args.out is not None else None, used)
        try:
            _check_targets(path, _targets(base, args.format), sources, args.overwrite)
        except Exception as e:  # one bad file must not stop the others
            print(failure_line(path, e), file=sys.stderr)
            refused.append(str(path))
        else:
            planned.append((path, base))
    return planned, refused


def _transcribe_all(
    transcriber: Transcriber,
    planned: list[tuple[Path, Path]],
    args: argparse.Namespace,
    options: TranscribeOptions,
    punctuator: Punctuator | OwnMarks | None,
) -> list[str]:
    """Transcribe every file `_plan` kept (each with where its transcripts go), reporting each
    failure on one line; returns the failed files."""
    failures: list[str] = []
    for path, base in planned:
        name = str(path)
        try:
            if args.out is not None or path.is_file():  # no folder made for a missing input
                _check_folder(base.parent)
            segments, info = _transcribe_one(transcriber, path, options, punctuator, args.speakers)
            written = _write_all(segments, _targets(base, args.format), info, args.overwrite)
        except Exception as e:  # one bad file must not stop the others
            log.debug("failed on %s", path, exc_info=True)
            print(failure_line(path, e), file=sys.stderr)
            failures.append(name)
            continue
        print("wrote " + ", ".join(str(w) for w in written), file=sys.stderr)
    return failures
