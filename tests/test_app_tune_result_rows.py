"""The Tune page's result says its before → after was measured on held-out recordings that did
not choose the saved step (engine.tune.loop.heldout_shares), in both languages."""

from __future__ import annotations

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
