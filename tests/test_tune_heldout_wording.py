"""What the CLI, the data check and a result re-read from a card say of the held-out rows: how
many measure the result and how many chose the saved step (engine.tune.data.heldout_shares),
and that no step was chosen where none was. No model runs; the check reads the demo model's
files only."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_data_faults import _config, _wav

from engine.tune.data import MIN_SPLIT_ROWS, heldout_shares
from engine.tune.events import JobFinished, JobResult, JobStarted
from engine.tune.export import ModelCard
from engine.tune.prepare import SMALL_HELDOUT, check_data


def _result(selection_rows: int) -> JobResult:
    return JobResult(Path("m"), None, 0.5, 0.25, 20, 20, "ab", selection_rows)


def _started(heldout: int) -> JobStarted:
    from engine.tune.config import TuneConfig

    config = TuneConfig(model="m", data="d", output_dir="o", learning_rate=1e-4)
    return JobStarted(config, 40, heldout, 60.0, "", 0, (), "", 0.0, 1, 2, "cpu", "fp32", 1, 0)


def _said(events, capsys) -> str:
    from engine.cli.tune import _consume

    assert _consume(events, lambda **kw: None, 0) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if "held-out CER" in x]
    return line


def test_the_cli_says_which_rows_chose_the_step(capsys):
    """Old: "held-out CER 50.00 % → 25.00 % (best step 20)", whether a step was chosen or not."""
    line = _said([_started(10), JobFinished(_result(5))], capsys)
    assert line == "held-out CER 50.00 % → 25.00 % (step 20, chosen on 5 other held-out rows)"


def test_the_cli_says_no_step_was_chosen_and_why(capsys):
    line = _said([_started(MIN_SPLIT_ROWS - 1), JobFinished(_result(0))], capsys)
    assert line == (
        "held-out CER 50.00 % → 25.00 % (the last step, 20: no step chosen, fewer than "
        f"{MIN_SPLIT_ROWS} held-out rows)"
    )
    # enough rows, none chose (a Whisper job, one resumed from a checkpoint before the split)
    line = _said([_started(MIN_SPLIT_ROWS), JobFinished(_result(0))], capsys)
    assert line == "held-out CER 50.00 % → 25.00 % (the last step, 20: no step chosen)"


def test_a_result_read_from_a_card_says_which_rows_chose_the_step(tmp_path):
    """Old: a result re-read from the card after a restart had selection_rows 0 (no step
    chosen) where the live one said 4 rows chose it."""
    from app.tune.page import _saved_result
    from engine.tune.jobs import JobFolder

    job = JobFolder(tmp_path / "clinic")
    card = ModelCard("m", "lora", 10, 8, 30.0, 8, 0.5, 0.25, "x", cer_rows=4, selection_rows=4)
    assert _saved_result(job, card).selection_rows == 4


def _manifest(folder: Path, rows: int) -> Path:
    manifest = folder / "m.tsv"
    audio = [_wav(folder / f"{i}.wav", 1.0, seed=i) for i in range(rows)]
    manifest.write_text("path\ttext\n" + "".join(f"{a}\t天地\n" for a in audio), "utf-8")
    return manifest


@pytest.mark.parametrize("fraction", [0.4, 0.45, 0.6, 0.75])
def test_the_check_counts_the_rows_that_measure_the_result(tmp_path, fraction):
    """Old: 8 rows held out (4 measuring the result, 4 choosing the step) gave no small_heldout
    warning, and the check said all of them measured the result. 20 rows split by hash: 7, 8,
    9 and 13 held out."""
    check = check_data([_manifest(tmp_path, 20)], _config(heldout_fraction=fraction))
    held = check.heldout_examples
    report, selection = heldout_shares(held, split=held >= MIN_SPLIT_ROWS)
    assert (check.report_examples, check.selection_examples) == (len(report), len(selection))
    small = [i.count for i in check.issues if i.kind == "small_heldout"]
    assert small == ([len(report)] if len(report) < SMALL_HELDOUT else [])


def test_eight_held_out_rows_warn_that_four_measure_the_result(tmp_path):
    check = check_data([_manifest(tmp_path, 20)], _config(heldout_fraction=0.45))
    assert (check.heldout_examples, check.report_examples, check.selection_examples) == (8, 4, 4)
    assert [i.count for i in check.issues if i.kind == "small_heldout"] == [4]
