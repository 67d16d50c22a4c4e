"""`tingxie-cli evaluate`: CER, real-time factor and confidence quality of a model on a manifest."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

from engine.atomic import folder_problem
from engine.calibration import CALIBRATION_FILE

from . import ALLOW_PICKLE_HELP, BACKEND_HELP, positive_int
from .transcribe import not_for_whisper, whisper_ignores

__all__ = ["add_parser", "format_report", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="measure a model on a manifest: CER, real-time factor, confidence AUROC and ECE",
        description="Transcribe every row of the data (a manifest with columns path, text[, "
        "start, end]; a row whose text is blank or punctuation only is skipped) with "
        "the model and report character error rate (substitutions, deletions, insertions), "
        "real-time factor, and how well per-character confidence separates wrong from right "
        "characters (AUROC; expected calibration error).",
    )
    p.add_argument("--model", required=True, help="model folder or Hub id")
    p.add_argument(
        "--data",
        required=True,
        type=Path,
        help="manifest .tsv/.csv (path, text) or JSON lines, or what `tune` reads: a training "
        "set's folder (holding manifest.tsv), a Common Voice folder, a folder of audio + .txt",
    )
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--plot", type=Path, help="write a reliability diagram to this PNG file")
    p.add_argument("--limit", type=positive_int, metavar="N", help="evaluate only the first N rows")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to run")
    p.add_argument("--allow-pickle", action="store_true", help=ALLOW_PICKLE_HELP)
    p.add_argument(
        "--backend", choices=("auto", "torch", "onnx"), default="auto", help=BACKEND_HELP
    )
    p.add_argument(
        "--decoder",
        choices=("auto", "greedy", "beam"),
        default="auto",
        help="CTC models: auto = beam search with the model folder's language model when it has "
        "one (the greedy CER is printed beside it), greedy = without (default: %(default)s)",
    )
    p.add_argument(
        "--domain-text",
        metavar="FILE",
        help="CTC models: a plain text file of the domain's sentences, mixed into the language "
        "model (built in seconds, cached by content); keep the test sentences out of it",
    )
    p.add_argument(
        "--hotwords",
        metavar="FILE",
        help="CTC models: terms to favour, one a line with an optional weight after a tab",
    )
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="fit a calibration of the confidence on these rows (decoded as with --decoder: "
        "a Platt map, and after a beam search also a map of the search's evidence) and write "
        "it into the model folder (calibration.json), which transcription then applies "
        "wherever a confidence is shown; the ECE and AUROC printed for it are measured on rows "
        "held out of each fit (the AUROC within each fold, averaged), and it is written only "
        "when that ECE beats the raw confidences' and the folder's calibration's (a Platt map "
        "against its Platt map, a beam map against what it shows), which it replaces only "
        "on rows with enough wrong characters to tell the two apart; a fit with no beam map "
        "keeps the folder's. Fit on a dev set, not the test set",
    )
    p.set_defaults(run=run)


def format_report(report) -> str:
    """The human-readable summary: CER with its error counts, speed, confidence quality."""
    c = report.cer
    auc = "n/a" if report.auroc is None else f"{report.auroc:.3f}"
    lines = [
        f"model     {report.model}",
        f"data      {report.manifest} ({len(report.rows)} utterances, "
        f"{report.audio_seconds / 60:.1f} min)",
        f"decoder   {report.decoder}",
        f"CER       {c.cer:.2%}  ({c.substitutions} substitutions, {c.deletions} deletions, "
        f"{c.insertions} insertions / {c.reference_chars} characters)",
        f"speed     RTF {report.rtf:.4f} ({_speed(report.rtf)})",
        f"confidence {report.confidence_measure}: AUROC {auc}, ECE {report.ece:.3f} "
        f"({report.wrong_characters} of {report.characters} characters wrong)",
        "measures compared (AUROC of right vs wrong characters, ECE):",
    ]
    if report.greedy_cer is not None:
        lines.insert(4, f"          greedy (no language model) {report.greedy_cer.cer:.2%}")
    for m in sorted(report.measures, key=lambda m: -(m.auroc or 0)):
        shown = "n/a" if m.auroc is None else f"{m.auroc:.3f}"
        lines.append(f"  {m.measure:<32} AUROC {shown}  ECE {m.ece:.3f}")
    return "\n".join(lines)


def _speed(rtf: float) -> str:
    """How many times real time an RTF is, in words that stay true below 1x (0.2x: slower).

    >>> _speed(0.01), _speed(0.5), _speed(4.6152)
    ('100x real time', '2x real time', '0.22x real time')
    """
    if not rtf:
        return "no audio timed"
    speed = 1 / rtf
    return f"{speed:.0f}x real time" if speed >= 10 else f"{speed:.2g}x real time"


def _calibrate(model, rows, options):
    """Fit the default measure's calibration (Whisper's, or a CTC model's primary measure as
    decoded here) and write it beside the model when its held-out ECE beats the raw
    confidences' and, where the folder has a calibration of that measure, that one's on these
    rows, like with like (`calibration_ece`), with enough wrong characters to tell them apart
    (`MIN_WRONG_TO_REPLACE`). A fit without a beam map keeps the folder's: the Platt map is all
    it replaces. Returns the fit, the calibration written (or that would have been) and, when it
    was not written, why. ValueError or OSError, saying what to do and that nothing was
    written, when it cannot be fitted or written."""
    from engine.calibration import read_calibration
    from engine.tune.evaluate import (
        MIN_WRONG_TO_REPLACE,
        calibrated_measure,
        calibration_ece,
        fit_calibration,
    )

    folds = 2
    if len(rows) < folds:
        raise ValueError(
            f"--calibrate needs at least {folds} utterances (each is scored by a fit on the "
            f"others), {len(rows)} evaluated; nothing written"
        )
    if not any(r.correct for r in rows):
        raise ValueError("--calibrate: the model wrote no character to fit on; nothing written")
    try:
        fit = fit_calibration(rows, calibrated_measure(model, options), options, folds)
    except ValueError as e:
        raise ValueError(f"--calibrate: {e}; nothing written") from e
    path = Path(model.path) / CALIBRATION_FILE
    current = read_calibration(model.path, fit.calibration.measure)
    written = fit.calibration
    if current is not None and written.beam is None:
        written = replace(written, beam=current.beam)
    if fit.held_out_ece >= fit.raw_ece:
        return fit, written, "it does not lower the ECE of the raw confidences on these rows"
    if current is not None:
        wrong = sum(not x for r in rows for x in r.correct)
        if wrong < MIN_WRONG_TO_REPLACE:
            return (
                fit,
                written,
                (
                    f"{wrong} wrong characters are too few to judge (it takes "
                    f"{MIN_WRONG_TO_REPLACE}) whether it does better than the folder's "
                    f"{CALIBRATION_FILE}; evaluate more rows, or remove {path} and run again"
                ),
            )
        ece = calibration_ece(current, rows, fit.calibration.beam is not None, options)
        if fit.held_out_ece >= ece:
            return (
                fit,
                written,
                (
                    f"the folder's {CALIBRATION_FILE} does better on these rows (ECE {ece:.3f}); "
                    f"to replace it anyway, remove {path} and run again"
                ),
            )
    try:
        written.write(model.path)
    except OSError as e:
        why = e.strerror or e
        raise OSError(f"--calibrate: cannot write {path} ({why}); nothing written") from e
    return fit, written, None


def _plot_problem(path: Path) -> str | None:
    """Why the diagram cannot be written at `path` (its folder missing, not a folder, or not
    taking files; `path` a folder), or None: told before the evaluation, not after it ran."""
    folder = path.parent
    if path.is_dir():
        return f"{path} is a folder; give the PNG file's name in it"
    if not folder.exists():
        return f"folder {folder} of {path} does not exist; create it or choose another"
    if not folder.is_dir():
        return f"{folder} of {path} is not a folder; choose another place for the PNG"
    problem = folder_problem(folder)  # a folder that exists: only a scratch file is written
    return None if problem is None else f"cannot write {path} ({problem}); choose another folder"


def _plot(report, path: Path) -> None:
    """Write the reliability diagram; OSError with a message for the user. (That matplotlib is
    installed and the folder takes files was checked before the evaluation:
    `ensure_plot_available`, `_plot_problem`.)"""
    from engine.tune.evaluate import write_reliability_png

    try:
        write_reliability_png(report, path)
    except OSError as e:
        raise OSError(f"--plot: cannot write {path} ({e.strerror or e})") from e


def _warn_skipped(findings) -> None:
    """Name each row left out of the scoring, and why (the CER is over the others)."""
    for finding in findings:
        print(f"warning: {finding.origin}: {finding.detail}; row skipped", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.lm import LmError, check_decoding_files
    from engine.loader import load_model
    from engine.model import LoadOptions, ModelLoadError
    from engine.tune.evaluate import (
        EvalOptions,
        describe,
        ensure_plot_available,
        read_examples,
        score_examples,
        summarize,
    )
    from engine.whisper import LoadedWhisper, is_whisper

    try:
        options = EvalOptions(
            limit=args.limit,
            load=LoadOptions(
                device=args.device, allow_pickle=args.allow_pickle, backend=args.backend
            ),
            decoder=args.decoder,
            domain_text=args.domain_text,
            hotwords=args.hotwords,
        )
        # read before the model loads: a typo is told without waiting for it (Whisper reads
        # neither: its warning says so)
        if not is_whisper(args.model):
            check_decoding_files(options.decoder, options.domain_text, options.hotwords)
    except ValueError as e:
        print(f"tingxie-cli evaluate: {e}", file=sys.stderr)
        return 2
    if args.plot:  # the diagram is drawn last: what stops it is told before any work
        try:
            ensure_plot_available()
        except ImportError as e:
            print(f"tingxie-cli evaluate: --plot: {e}", file=sys.stderr)
            return 2
        if problem := _plot_problem(args.plot):
            print(f"tingxie-cli evaluate: --plot: {problem}", file=sys.stderr)
            return 2
    try:  # the data before the model: a wrong path is told without waiting for a load
        examples, skipped = read_examples(args.data, options)
    except (ValueError, OSError) as e:  # the data: status 1, as a bad file for transcribe
        report = getattr(e, "report", None)
        _warn_skipped(report.skipped if report else [])
        print(f"tingxie-cli evaluate: {e}", file=sys.stderr)
        return 1
    _warn_skipped(skipped)
    try:
        model = load_model(args.model, options.load)
        decoder = describe(model, options)
    except (ValueError, OSError, ImportError, ModelLoadError, LmError) as e:
        print(f"tingxie-cli evaluate: {e}", file=sys.stderr)
        return 2
    if isinstance(model, LoadedWhisper) and (unused := not_for_whisper(args)):
        print(f"warning: {whisper_ignores(unused, args.model)}", file=sys.stderr)
    # A row that cannot be read stops the run: a CER over the rows left would pass for the
    # whole set's. Rows come one per example, in order, so the one that failed is the next.
    scored = score_examples(model, examples, options)
    rows = []
    try:
        for row in tqdm(scored, total=len(examples), unit="utt", file=sys.stderr,
                        disable=args.json, mininterval=1.0):  # fmt: skip
            rows.append(row)
    except (ValueError, OSError) as e:
        where = examples[len(rows)].where
        print(f"tingxie-cli evaluate: {where}: {e}; fix that row or leave it out, then run again",
              file=sys.stderr)  # fmt: skip
        return 1
    report = summarize(rows, options, model=args.model, manifest=args.data, decoder=decoder)
    # The report stands whatever becomes of the plot and the calibration: printed first (in
    # JSON, with the calibration when it was fitted), then what failed, with status 1.
    if not args.json:
        print(format_report(report), flush=True)
    failed = []
    fit = written = unwritten = None
    if args.plot:
        try:
            _plot(report, args.plot)
        except (ImportError, OSError) as e:
            failed.append(str(e))
    if args.calibrate:
        try:
            fit, written, unwritten = _calibrate(model, rows, options)
        except (ValueError, OSError) as e:
            failed.append(str(e))
        else:
            if fit.no_beam_map is not None:  # the rows were beam-searched
                print(f"warning: --calibrate: {fit.no_beam_map}", file=sys.stderr)
    if args.json:
        out = report.to_dict()
        if fit is not None:
            out["calibration"] = {
                **asdict(written),
                "raw_ece": fit.raw_ece,
                "held_out_ece": fit.held_out_ece,
                "raw_auroc": fit.raw_auroc,
                "held_out_auroc": fit.held_out_auroc,
                "folds": fit.folds,
                "written": unwritten is None,
                "not_written_because": unwritten,
                "no_beam_map": fit.no_beam_map,
                "beam_map_kept_from_folder": written.beam is not None
                and fit.calibration.beam is None,
            }
        print(json.dumps(out, ensure_ascii=False, indent=2, allow_nan=False), flush=True)
    else:
        if fit is not None:
            c = fit.calibration
            maps = "a beam map and Platt" if c.beam is not None else "Platt"
            if written.beam is not None and c.beam is None:
                maps += " (beside the folder's beam map, kept)"
            auc = "" if fit.held_out_auroc is None else (
                f"; AUROC {fit.raw_auroc:.3f} raw, {fit.held_out_auroc:.3f} calibrated"
                " (within each fold, averaged)"
            )  # fmt: skip
            where = (
                f"written to {Path(model.path) / CALIBRATION_FILE}"
                if unwritten is None
                else "not written"
            )
            print(
                f"calibration {c.measure}: {maps} a={c.a:.3f} b={c.b:.3f} on {c.characters} "
                f"characters, {where}; ECE {fit.raw_ece:.3f} raw, {fit.held_out_ece:.3f} "
                f"calibrated on held-out rows ({fit.folds}-fold by utterance){auc}"
            )
            if unwritten is not None:
                print(f"  not written: {unwritten}")
        if args.plot and not any(m.startswith("--plot") for m in failed):
            print(f"reliability diagram: {args.plot}")
    for message in failed:
        print(f"tingxie-cli evaluate: {message}", file=sys.stderr)
    return 1 if failed else 0
