"""Entry point of the `tingxie` desktop app."""

from __future__ import annotations

import logging
import sys

__all__ = ["build_window", "main"]


def build_window(store=None, engine=None, *, library=None, player=None):
    """The window wired to a started worker, with preferences from `store` (QSettings), the
    transcript library `library` (an engine.library.store.Store; default: the user's) and the
    review's span `player` (default: the sound card)."""
    from . import settings
    from .window import MainWindow
    from .worker import EngineWorker, WorkerHandle

    store = store if store is not None else settings.open_settings()
    handle = WorkerHandle(EngineWorker(engine))
    handle.start()
    return MainWindow(handle, settings.Settings(store), library=library, player=player)


def main(argv: list[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from .fonts import cjk_font

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv if argv is None else argv
    qt = QApplication.instance() or QApplication(argv)
    qt.setApplicationName("Tingxie")
    qt.setOrganizationName("Tingxie")
    qt.setFont(cjk_font())
    window = build_window()
    window.show()
    window.start()
    # Files given on the command line (the desktop launcher's %F) are queued for transcription.
    window.add_files([a for a in qt.arguments()[1:] if not a.startswith("-")])
    return qt.exec()


if __name__ == "__main__":
    sys.exit(main())
