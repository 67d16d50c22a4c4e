"""The model banner above the waveform: why there is no (real) model and the ways out."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from .i18n import Message, tr
from .plain import plain

__all__ = ["ModelBanner"]


class ModelBanner(QFrame):
    """A yellow strip with a message and buttons: choose a model folder, use Whisper-base
    (real voices) or the demo, or keep the model that stands in for the default one
    (`keep_requested`)."""

    choose_requested = Signal()
    whisper_requested = Signal()
    demo_requested = Signal()
    keep_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("model-banner")
        self.setStyleSheet("#model-banner { background: #fff3cd; } QLabel { color: #5c4400; }")
        self.label = plain(QLabel())  # errors quote paths and config.json values
        self.label.setWordWrap(True)
        self.choose_button = QPushButton()
        self.whisper_button = QPushButton()
        self.demo_button = QPushButton()
        self.keep_button = QPushButton()
        self.choose_button.clicked.connect(self.choose_requested)
        self.whisper_button.clicked.connect(self.whisper_requested)
        self.demo_button.clicked.connect(self.demo_requested)
        self.keep_button.clicked.connect(self.hide)
        self.keep_button.clicked.connect(self.keep_requested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.choose_button)
        layout.addWidget(self.whisper_button)
        layout.addWidget(self.demo_button)
        layout.addWidget(self.keep_button)
        self._message: Message = str
        self.retranslate()
        self.hide()

    def text(self) -> str:
        return self.label.text()

    def show_message(
        self,
        message: Message,
        *,
        offer_demo: bool,
        offer_keep: bool = False,
        offer_whisper: bool = False,
    ) -> None:
        """Show `message` (reworded on every language switch) and the ways out offered beside
        choosing a model folder, which every message offers."""
        self._message = message
        self.label.setText(message())
        self.whisper_button.setVisible(offer_whisper)
        self.demo_button.setVisible(offer_demo)
        self.keep_button.setVisible(offer_keep)
        self.show()

    def retranslate(self) -> None:
        self.label.setText(self._message())
        self.choose_button.setText(tr("action.choose_model"))
        self.whisper_button.setText(tr("action.use_whisper"))
        self.demo_button.setText(tr("action.use_demo"))
        self.keep_button.setText(tr("action.keep_model"))
