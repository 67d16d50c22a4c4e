"""The Tune page's result says its before → after was measured on held-out recordings that did
not choose the saved step (engine.tune.data.heldout_shares), in both languages."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app import i18n


@pytest.mark.parametrize(
    ("language", "says"),
    [("en", "none of which was used to choose that step"), ("zh", "这些录音均未用于选择该步")],
)
def test_the_result_says_its_rows_did_not_choose_the_step(qtbot, tmp_path, language, says):
    from app.tune.result import ResultPanel
    from engine.tune.events import JobResult

    i18n.set_language(language)
    try:
        panel = ResultPanel()
        qtbot.addWidget(panel)
        panel.show_result(JobResult(tmp_path / "model", None, 0.5, 0.25, 20, 20, "", 8), [])
        assert says in panel.cer.text() and "20" in panel.cer.text()
    finally:
        i18n.set_language("en")


@pytest.mark.parametrize(
    ("language", "split", "says"),
    [
        ("en", 5, "10 held out: 5 measure the result, 5 choose the checkpoint"),
        ("zh", 5, "留出 10 句：5 句检验结果，5 句用于选择检查点"),
        ("en", 0, "10 held out"),
    ],
)
def test_the_watch_step_says_which_held_out_rows_measure_the_result(
    qtbot, tmp_path, language, split, says
):
    """It said all held out rows measured the result, though half of them choose the step."""
    from app.tune.watch import WatchPanel
    from engine.tune.config import TuneConfig
    from engine.tune.events import JobStarted

    config = TuneConfig(model="m", data="d", output_dir=str(tmp_path), method="lora", steps=100)
    i18n.set_language(language)
    try:
        panel = WatchPanel()
        qtbot.addWidget(panel)
        panel.add(JobStarted(config, 40, 10, 60.0, "", 0, (), "", 0.1, 1, 2, "cpu", "fp32", 1, 0,
                             selection_examples=split))  # fmt: skip
        assert says in panel.about.text()
        assert ("measure the result" in panel.about.text()) == (language == "en" and split > 0)
    finally:
        i18n.set_language("en")


def test_a_result_from_a_card_of_before_the_split_does_not_claim_its_rows_chose_nothing(
    qtbot, tmp_path
):
    """A card written before the held-out rows were split (cer_rows None) was measured on the
    rows that chose the step; re-read, its result said none of them had."""
    from app.tune.page import _saved_result
    from app.tune.result import ResultPanel
    from engine.tune.export import ModelCard
    from engine.tune.jobs import JobFolder

    job = JobFolder(tmp_path / "clinic")
    old = ModelCard("m", "lora", 10, 8, 30.0, 8, 0.5, 0.25, "x")
    new = replace(old, cer_rows=4, selection_rows=4)
    panel = ResultPanel()
    qtbot.addWidget(panel)
    panel.show_result(_saved_result(job, old), [])
    assert "may also have chosen" in panel.cer.text() and "none of which" not in panel.cer.text()
    panel.show_result(_saved_result(job, new), [])
    assert "none of which was used to choose that step" in panel.cer.text()
