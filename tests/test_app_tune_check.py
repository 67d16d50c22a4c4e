"""The Tune page's check step on a report built by hand: what the summary counts and what the
table lists of a long report, and the saved report that holds every finding."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from app import i18n
from app.i18n import tr
from app.tune import checkview
from app.tune.checkview import CheckPanel
from engine.tune.data import Example, Finding, ValidationReport
from engine.tune.prepare import DataCheck, Issue


@pytest.fixture(autouse=True)
def _chinese_ui_after_each_test():
    yield
    i18n.set_language("zh")


@pytest.fixture
def dialogs(dialogs, monkeypatch) -> list[str]:
    """conftest's message boxes shown, and the questions asked too, answered No."""

    def question(parent, title, text, *args, **kwargs):
        dialogs.append(text)
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", question)
    return dialogs


def _detail(i: int) -> str:
    """A finding's detail holding both delimiters and a quote: the report must quote it."""
    return f'row {i}, "too short"\tby far'


def _check(findings: int, source: str = "/d/m.tsv") -> DataCheck:
    """Ten usable rows of a minute each, eight to train on and two held out, after
    `findings` rows too short to use."""
    kept = [Example(Path(f"/d/{i}.wav"), "天地") for i in range(10)]
    report = ValidationReport(
        kept,
        [Finding(f"m.tsv:{i + 2}", "too_short", _detail(i)) for i in range(findings)],
        len(kept) + findings,
        {e.id: 60.0 for e in kept},
    )
    issues = (Issue("skipped_rows", count=findings),) if findings else ()
    return DataCheck((source,), report, 8, 2, 8 * 60.0, 2 * 60.0, (), issues)


def _panel(qtbot, check: DataCheck) -> CheckPanel:
    panel = CheckPanel()
    qtbot.addWidget(panel)
    panel.show_check(check)
    return panel


def _answer_save(monkeypatch, path: Path, chosen: str) -> None:
    monkeypatch.setattr(
        "app.savedialog.QFileDialog.getSaveFileName", lambda *a, **k: (str(path), chosen)
    )


def test_the_summary_gives_the_minutes_of_the_rows_it_counts(qtbot):
    """ "8000 rows usable: 71.7 min of audio" gave the minutes of the training rows alone
    next to the count of every usable row (the held-out ones too)."""
    i18n.set_language("en")
    panel = _panel(qtbot, _check(0))
    assert panel.summary.text().startswith("10 of 10 rows usable: 10.0 min of audio; ")
    assert "8 utterances (8.0 min) to train on and 2 (120 s) held out" in panel.summary.text()
    i18n.set_language("zh")
    panel.retranslate()
    assert panel.summary.text().startswith("10 行中 10 行可用：共 10.0 分钟音频；")
    assert "8 句（8.0 分钟）用于训练" in panel.summary.text()


def test_a_long_report_says_how_much_the_table_lists(qtbot, monkeypatch):
    """The table lists the first findings only: it said nothing of the others."""
    monkeypatch.setattr(checkview, "_MAX_ROWS", 3)
    panel = _panel(qtbot, _check(5))
    assert panel.table.rowCount() == 3
    assert panel.listed.text() == tr("tune.check.listed", shown=3, total=5)
    assert not panel.listed.isHidden() and not panel.save_button.isHidden()
    panel.show_check(_check(3))
    assert panel.table.rowCount() == 3 and panel.listed.isHidden()
    assert not panel.save_button.isHidden()  # a short report can be saved too
    panel.show_check(_check(0))
    assert panel.save_button.isHidden()  # nothing to save


@pytest.mark.parametrize(
    ("typed", "chosen", "written", "delimiter"),
    [
        ("report", "TSV (*.tsv)", "report.tsv", "\t"),
        ("report.csv", "", "report.csv", ","),
        ("report", "", "report.tsv", "\t"),
        ("report", "CSV (*.csv)", "report.csv", ","),
    ],
)
def test_save_report_writes_every_finding(
    qtbot, monkeypatch, tmp_path, dialogs, typed, chosen, written, delimiter
):
    monkeypatch.setattr(checkview, "_MAX_ROWS", 3)
    i18n.set_language("en")
    panel = _panel(qtbot, _check(5))
    _answer_save(monkeypatch, tmp_path / typed, chosen)
    panel.save_button.click()
    with open(tmp_path / written, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    assert rows[0] == ["Row", "Problem", "Detail", "Trains?"]
    assert rows[1:] == [[f"m.tsv:{i + 2}", "too short", _detail(i), "left out"]
                        for i in range(5)]  # fmt: skip
    path = str(tmp_path / written)
    assert panel.listed.text() == tr("tune.check.report_saved", count=5, path=path)
    assert dialogs == []


def test_save_report_never_writes_over_the_data_it_checked(qtbot, monkeypatch, tmp_path, dialogs):
    manifest = tmp_path / "m.tsv"
    manifest.write_text("path\ttext\n", encoding="utf-8")
    panel = _panel(qtbot, _check(2, source=str(manifest)))
    _answer_save(monkeypatch, manifest, "TSV (*.tsv)")
    panel.save_button.click()
    assert manifest.read_text(encoding="utf-8") == "path\ttext\n"
    assert dialogs == [tr("tune.check.report_over_source", path=str(manifest))]


def test_save_report_asks_before_replacing_the_file_its_suffix_names(
    qtbot, monkeypatch, tmp_path, dialogs
):
    """The dialog asked about "report"; report.tsv, written instead, is asked about here."""
    kept = tmp_path / "report.tsv"
    kept.write_text("mine", encoding="utf-8")
    panel = _panel(qtbot, _check(2))
    _answer_save(monkeypatch, tmp_path / "report", "TSV (*.tsv)")
    panel.save_button.click()  # answered No
    assert kept.read_text(encoding="utf-8") == "mine"
    assert dialogs == [tr("dialog.replace_file", path=str(kept))]


def test_a_report_that_cannot_be_written_is_said(qtbot, monkeypatch, tmp_path, dialogs):
    panel = _panel(qtbot, _check(2))
    target = tmp_path / "no such folder" / "report.tsv"
    _answer_save(monkeypatch, target, "TSV (*.tsv)")
    panel.save_button.click()
    assert len(dialogs) == 1 and str(target) in dialogs[0]
    assert not target.exists()


def test_the_summary_says_which_held_out_rows_measure_the_result(qtbot):
    """Old: "10 (600 s) held out to measure the result" where 5 of them choose the checkpoint
    (engine.tune.data.heldout_shares); fewer than 8 held out all measure it."""
    from dataclasses import replace

    i18n.set_language("en")
    check = replace(_check(0), train_examples=0, heldout_examples=10, heldout_seconds=600.0)
    panel = _panel(qtbot, replace(check, selection_examples=5))
    assert panel.summary.text().endswith(
        "10 (600 s) held out: 5 measure the result, 5 choose the checkpoint."
    )
    i18n.set_language("zh")
    panel.retranslate()
    assert panel.summary.text().endswith("10 句（600 秒）留出：5 句检验结果，5 句用于选择检查点。")
    i18n.set_language("en")
    panel.show_check(_check(0))  # 2 held out: none chooses
    assert panel.summary.text().endswith("2 (120 s) held out to measure the result.")
