"""The About dialog: version, the model in use and the third-party notices, in the UI
language."""

from __future__ import annotations

from app import i18n
from app.about import AboutDialog
from engine import version


def test_about_shows_version_model_and_notices(qtbot):
    i18n.set_language("en")
    try:
        dialog = AboutDialog("resources/demo-model")
        qtbot.addWidget(dialog)
        assert dialog.windowTitle() == "About Tingxie"
        assert dialog.model_label.text() == "Model in use: resources/demo-model"
        notices = dialog.notices.toPlainText()
        assert "PySide6_Essentials" in notices and "torch" in notices and "Noto Sans CJK" in notices
        assert version() in dialog.findChildren(type(dialog.model_label))[0].text()
    finally:
        i18n.set_language("zh")
    dialog = AboutDialog(None)
    qtbot.addWidget(dialog)
    assert dialog.windowTitle() == "关于听写" and dialog.model_label.text() == "未加载模型"
