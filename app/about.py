"""The About dialog: the app's version, the model in use, the main runtimes' versions, and the
third-party notices (resources/THIRD_PARTY_NOTICES.md) for everything Tingxie runs on."""

from __future__ import annotations

from importlib import metadata

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTextBrowser, QVBoxLayout, QWidget

from engine import version
from engine.shipped import resource

from .i18n import STRINGS, tr
from .plain import plain

__all__ = ["NOTICES", "AboutDialog"]

NOTICES = resource("THIRD_PARTY_NOTICES.md")

STRINGS.update(
    {
        "about.title": ("About Tingxie", "关于听写"),
        "about.version": ("Tingxie {version}", "听写 {version}"),
        "about.model": ("Model in use: {model}", "当前模型：{model}"),
        "about.no_model": ("No model loaded", "未加载模型"),
        "about.runtimes": (
            "Python {python}, PyTorch {torch}, Qt {qt}",
            "Python {python}，PyTorch {torch}，Qt {qt}",
        ),
        "about.license": (
            "Apache License 2.0. Third-party software and models, with their licenses:",
            "Apache License 2.0。所用第三方软件与模型及其许可证：",
        ),
        "about.no_notices": (
            "The third-party notices are missing from this installation ({path}).",
            "此安装中缺少第三方声明（{path}）。",
        ),
    }
)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


class AboutDialog(QDialog):
    def __init__(self, model: str | None, parent: QWidget | None = None) -> None:
        import platform

        from PySide6 import __version__ as qt_version

        super().__init__(parent)
        self.setWindowTitle(tr("about.title"))
        self.resize(720, 560)
        layout = QVBoxLayout(self)
        heading = QLabel(f"<h2>{tr('about.version', version=version())}</h2>")
        model_text = tr("about.model", model=model) if model else tr("about.no_model")
        self.model_label = plain(QLabel(model_text))  # a folder or a Hub id, as typed
        self.model_label.setWordWrap(True)
        runtimes = tr("about.runtimes", python=platform.python_version(),
                      torch=_version("torch"), qt=qt_version)  # fmt: skip
        self.notices = QTextBrowser()
        self.notices.setOpenExternalLinks(True)
        if NOTICES.is_file():
            self.notices.setMarkdown(NOTICES.read_text(encoding="utf-8"))
        else:
            self.notices.setPlainText(tr("about.no_notices", path=NOTICES))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        for widget in (heading, self.model_label, QLabel(runtimes), QLabel(tr("about.license"))):
            layout.addWidget(widget)
        layout.addWidget(self.notices, 1)
        layout.addWidget(buttons)
