"""Texts of the Chinese UI that were English: pyqtgraph's menu on the plots, the data check's
verdict and detail column, the Tune form's setting notes, and the units of durations."""

from __future__ import annotations

import dataclasses
import re

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QMenu

from app import i18n
from app.i18n import STRINGS, tr

CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_WORD = re.compile(r"[A-Za-z]{3,}")
LATIN_UNIT = re.compile(r"\d+ (s|min|h)\b")


@pytest.fixture
def language():
    """`language(lang)` switches the UI language; the one before is back after the test."""
    before = i18n.language()
    yield i18n.set_language
    i18n.set_language(before)


# ---- pyqtgraph's context menu --------------------------------------------------------------


def _plots(qtbot):
    """(name, plot) for every pyqtgraph plot the app shows, each in its widget, shown; and the
    widgets (kept by the caller: Qt deletes a widget Python lets go of)."""
    from app.review.view import SpanWaveform
    from app.tune.checkview import CheckPanel
    from app.tune.watch import WatchPanel
    from app.waveform import WaveformView

    waveform, span, watch, check = WaveformView(), SpanWaveform(), WatchPanel(), CheckPanel()
    check.histogram.show()  # shown with a check's durations
    plots = [
        ("transcript waveform", waveform.plot),
        ("review waveform", span.plot),
        ("tune loss", watch.loss_plot),
        ("tune CER", watch.cer_plot),
        ("check histogram", check.histogram),
    ]
    for widget in (waveform, span, watch, check):
        qtbot.addWidget(widget)
        widget.resize(700, 500)
        widget.show()
    for _, plot in plots:
        plot.show()
        qtbot.waitExposed(plot)
    return plots, (waveform, span, watch, check)


def test_no_plot_opens_pyqtgraphs_english_menu(qtbot, language):
    """Old: a right click on any plot opened pyqtgraph's menu in English inside the Chinese UI
    (View All, Plot Options → Transforms → Log X, Export… with its English dialog)."""
    language("zh")
    opened = {}
    plots, _widgets = _plots(qtbot)
    for name, plot in plots:
        viewport = plot.viewport()
        qtbot.mouseClick(viewport, Qt.MouseButton.RightButton, pos=viewport.rect().center())
        qtbot.wait(50)
        popup = QApplication.activePopupWidget()
        if isinstance(popup, QMenu):
            opened[name] = [a.text() for a in popup.actions() if a.text()]
            popup.close()
        view_box = plot.getPlotItem().getViewBox()
        if plot.getPlotItem().menuEnabled() or view_box.menuEnabled():
            opened.setdefault(name, ["<menu enabled>"])
    assert opened == {}


# ---- the data check ----------------------------------------------------------------------


@pytest.fixture
def check_page(qtbot, tmp_path):
    """The Tune page with a tiny model over 天地人和 and, as sources, its tone corpus plus a
    manifest of a row without text and a row whose audio is gone."""
    from app.tune.page import TunePage
    from app.tune.supervisor import SupervisorHandle, TuneSupervisor
    from engine.testmodels import build_model
    from engine.tune.testdata import tone_corpus

    chars = "天地人和"
    model = build_model(tmp_path / "base", "tiny", chars=chars, seed=0)
    manifest = tone_corpus(tmp_path / "tones", 4, chars=chars, char_seconds=0.1, seed=0)
    extra = tmp_path / "extra.tsv"
    clip = manifest.parent / "clips" / "u0000.wav"
    extra.write_text(f"path\ttext\n{clip}\t\n{tmp_path / 'gone.wav'}\t天地\n", encoding="utf-8")
    page = TunePage(SupervisorHandle(TuneSupervisor(tmp_path / "tuning")), tmp_path / "tuning")
    qtbot.addWidget(page)
    page.sources.model_box.setCurrentText(str(model))
    page.sources.select_source(manifest)
    page.sources.select_source(extra, only=False)
    return page


def _rows(page) -> list[list[str]]:
    table = page.checker.table
    return [
        [table.item(r, c).text() for c in range(table.columnCount())]
        for r in range(table.rowCount())
    ]


def _without_paths(text: str) -> str:
    """The text less its markup, paths and file extensions (.tsv is no English word)."""
    return re.sub(r"<[^>]+>|/\S+|\.[a-z]+\b", "", text)


def test_the_check_words_each_row_and_the_unusable_data_in_chinese(check_page, tmp_path, language):
    """Old: the Detail column read 'transcript is empty', '…/gone.wav does not exist' and
    '0.26 s < 0.3 s', and the blocking line '数据无法使用：data …/nowhere.tsv does not exist; give
    a manifest (.tsv/.csv) or a folder', in the Chinese UI."""
    language("zh")
    check_page.check()
    findings = check_page.checker.check.report.findings
    details = [row[2] for row in _rows(check_page)]
    shown = dict(zip(((f.origin, f.kind) for f in findings), details, strict=True))
    assert shown["extra.tsv:2", "empty_text"] == "文字为空"
    assert shown["extra.tsv:3", "missing_audio"] == f"{tmp_path / 'gone.wav'} 不存在"
    short = [f for f in findings if f.kind == "too_short"]
    assert short and all(
        shown[f.origin, f.kind] == f"时长 {f.params['seconds']:.2f} 秒，短于下限 0.3 秒"
        for f in short
    )
    assert not [d for d in details if ENGLISH_WORD.search(_without_paths(d))]
    language("en")  # the same check, reworded: the engine's English (the CLI's)
    check_page.retranslate()
    assert [row[2] for row in _rows(check_page)] == [f.detail for f in findings]

    language("zh")
    check_page.sources.select_source(tmp_path / "nowhere.tsv")
    check_page.check()
    blocking = check_page.checker.issues.text()
    assert f"数据无法使用：数据 {tmp_path / 'nowhere.tsv'} 不存在" in blocking
    assert not ENGLISH_WORD.findall(_without_paths(blocking)), blocking
    language("en")
    check_page.checker.retranslate()
    assert f"data {tmp_path / 'nowhere.tsv'} does not exist; give a manifest" in (
        check_page.checker.issues.text()
    )


def test_no_usable_row_is_counted_in_words(tiny_model_dir, tmp_path, language):
    """When no row is usable the verdict counts the rows of each kind: in the engine that is
    '1 missing_audio' (the CLI's); in the app, the kinds' own wording."""
    from app.tune.checkview import issue_text
    from engine.tune.config import TuneConfig
    from engine.tune.prepare import check_data

    manifest = tmp_path / "m.tsv"
    manifest.write_text(f"path\ttext\n{tmp_path / 'gone.wav'}\t天\n", encoding="utf-8")
    config = TuneConfig(model=str(tiny_model_dir), data="", output_dir="")
    (issue,) = check_data([manifest], config).issues
    assert issue.code == "dataset.none_usable" and "(1 missing_audio)" in issue.detail
    language("zh")
    assert issue_text(issue) == (
        f"数据无法使用：{manifest}：1 行中没有一行可用（音频不存在 1 行）；请修正有问题的行"
    )
    language("en")
    assert "none of 1 rows is usable (1 audio missing)" in issue_text(issue)


def test_the_rows_are_listed_when_none_is_usable(qtbot, tiny_model_dir, tmp_path):
    """The verdict sends the user to the rows' table, which stayed empty."""
    from app.tune.checkview import CheckPanel
    from engine.tune.config import TuneConfig
    from engine.tune.prepare import check_data

    manifest = tmp_path / "m.tsv"
    manifest.write_text(f"path\ttext\n{tmp_path / 'gone.wav'}\t天\n", encoding="utf-8")
    config = TuneConfig(model=str(tiny_model_dir), data="", output_dir="")
    panel = CheckPanel()
    qtbot.addWidget(panel)
    panel.show_check(check_data([manifest], config))
    assert panel.table.rowCount() == 1 and panel.table.item(0, 0).text() == "m.tsv:2"
    assert "gone.wav" in panel.table.item(0, 2).text()
    assert not panel.ready()


# ---- the Tune form's notes -----------------------------------------------------------------


def test_every_tune_setting_has_a_chinese_note():
    from app.tune.strings import SETTING_HELP_ZH
    from engine.tune.config import TuneConfig, settings_help

    names = [f.name for f in dataclasses.fields(TuneConfig)]
    assert sorted(SETTING_HELP_ZH) == sorted(names)
    assert all(CJK.search(SETTING_HELP_ZH[name]) for name in names)
    for name, _, english in settings_help():
        assert STRINGS[f"tune.help.{name}"] == (english, SETTING_HELP_ZH[name])


def test_the_form_notes_follow_the_ui_language(qtbot, language):
    """Old: all 34 notes beside the settings (and their tooltips) were the CLI's English help in
    the Chinese UI."""
    from app.tune.form import ConfigForm
    from engine.tune.config import settings_help

    english = {name: text for name, _, text in settings_help()}
    language("zh")
    form = ConfigForm()
    qtbot.addWidget(form)
    notes = [label.text() for label in form.findChildren(QLabel) if not label.isEnabled()]
    assert len(notes) == 34 and [n for n in notes if not CJK.search(n)] == []
    tips = {n: f.widget.toolTip() for n, f in form.fields.items()}
    assert [n for n, tip in tips.items() if not CJK.search(tip)] == []
    assert set(tips.values()) <= set(notes)  # each setting's note is its tooltip
    language("en")
    form.retranslate()
    assert {n: f.widget.toolTip() for n, f in form.fields.items()} == {
        n: english[n] for n in form.fields
    }
    notes = [label.text() for label in form.findChildren(QLabel) if not label.isEnabled()]
    assert sorted(notes) == sorted(
        english[n] for n in english if n not in ("model", "data", "output_dir")
    )


# ---- units of durations ------------------------------------------------------------------


def test_durations_are_in_the_ui_languages_units(language):
    """Old: '剩余 12 处存疑 · 约需 3 min 05 s', '约需 3 min 21 s：准备 45 s，每步 0.50 秒…'."""
    from app.review.page import format_duration
    from app.tune.how import estimate_text
    from engine.tune.events import Estimate

    estimate = Estimate(45, 0.5, 2.0, 300, 3, 6_000_000_000, 0, "cpu", 5, 1.5, 4, 70)
    language("zh")
    assert tr("review.progress", count=12, time=format_duration(185)) == (
        "剩余 12 处存疑 · 约需 3 分 05 秒"
    )
    assert [format_duration(s) for s in (45, 185, 3720)] == ["45 秒", "3 分 05 秒", "1 小时 02 分"]
    assert estimate_text(estimate).startswith("在 cpu 上约需 4 分 37 秒：准备 45 秒，每步 0.50 秒")
    # the parts add up to the total: the checkpoints and the finish are said too
    assert "4 个检查点 × 1.5 秒，收尾 1 分 10 秒" in estimate_text(estimate)
    assert not LATIN_UNIT.search(estimate_text(estimate))
    language("en")
    assert [format_duration(s) for s in (45, 185, 3720)] == ["45 s", "3 min 05 s", "1 h 02 min"]


def test_the_library_length_column_reads_in_seconds_and_minutes(qtbot, tmp_path, language):
    """Old: f"{minutes:.1f} min" in both languages, so a 2-second memo read '0.0 min'."""
    from app.library import LibraryView
    from engine.library.store import Store
    from engine.results import Char, Segment, TranscriptionInfo

    chars = tuple(Char(t, 0.1 * k, 0.1 * k + 0.05, 0.9) for k, t in enumerate("你好"))
    language("zh")
    with Store(tmp_path / "lib.db") as store:
        for seconds in (2.0, 150.0):
            audio = f"/x/memo{seconds}.wav"
            info = TranscriptionInfo(audio, seconds, 16000, "m", "cpu", "fp32", "eager", "max_prob")
            store.add_transcript([Segment(0, 0.0, 0.15, chars)], audio=audio, info=info)
        view = LibraryView(store)
        qtbot.addWidget(view)

        def lengths() -> list[str]:
            return sorted(view.table.item(r, 2).text() for r in range(view.table.rowCount()))

        assert lengths() == ["2 分 30 秒", "2 秒"]
        language("en")
        view.retranslate()  # as the window does on Language → English
        assert lengths() == ["2 min 30 s", "2 s"]


# ---- texts shown before a language switch ----------------------------------------------------


def test_a_failed_files_status_is_reworded_on_a_language_switch(qtbot, language):
    """The status kept the message in the language it was first shown in ("failed: …文件是空的")."""
    from app.filequeue import FileQueue
    from engine.audio import AudioError

    queue = FileQueue()
    qtbot.addWidget(queue)
    language("zh")
    queue.add(1, "/data/bad.wav")
    queue.set_state(1, "failed", AudioError("audio.empty", path="/data/bad.wav"))
    assert "文件是空的" in queue.status_text(1)
    language("en")
    queue.retranslate()
    assert "the file is empty" in queue.status_text(1) and not re.search(
        r"[\u4e00-\u9fff]", queue.status_text(1)
    )


def test_undo_texts_are_reworded_on_a_language_switch(qtbot, language):
    """What Undo names was worded once, when pushed ("Undo: 将 说话人 1 重命名为 Bob" in the
    English UI)."""
    from functools import partial

    from PySide6.QtGui import QUndoStack

    from app.undo import RenameSpeakerCommand, retranslate

    language("zh")
    stack = QUndoStack()
    text = partial(tr, "undo.rename_speaker", old="说话人 1", name="Bob")
    stack.push(RenameSpeakerCommand(lambda speaker, name: None, 0, "", "Bob", text))
    assert stack.undoText() == tr("undo.rename_speaker", old="说话人 1", name="Bob")
    chinese = stack.undoText()
    language("en")
    retranslate(stack)
    assert stack.undoText() == tr("undo.rename_speaker", old="说话人 1", name="Bob") != chinese


def test_a_placeholder_may_be_called_key(monkeypatch, language):
    """A {key} placeholder (a shortcut) is a value, not the string's key: it once made
    Check again raise "tr() got multiple values for argument 'key'"."""
    monkeypatch.setitem(STRINGS, "test.press", ("Press {key}", "按 {key}"))
    language("en")
    assert tr("test.press", key="F2") == "Press F2"
    language("zh")
    assert tr("test.press", key="F2") == "按 F2"
