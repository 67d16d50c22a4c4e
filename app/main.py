"""Entry point of the `tingxie` desktop app."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

__all__ = ["ICON", "build_window", "main"]

ICON = Path(__file__).resolve().parents[1] / "resources" / "icons" / "org.tingxie.Tingxie.svg"


def build_window(store=None, engine=None, *, library=None, player=None):
    """The window wired to a started worker, with preferences from `store` (QSettings), the
    transcript library `library` (an engine.library.store.Store; default: the user's) and the
    review's span `player` (default: the sound card)."""
    from . import settings
    from .worker import EngineWorker, WorkerHandle

    store = store if store is not None else settings.open_settings()
    handle = WorkerHandle(EngineWorker(engine))
    handle.start()
    if engine is None:  # the real engine: its imports (most of a model load) overlap the window's
        from engine.model import DEFAULT_MODEL

        prefs = settings.load(store)
        handle.import_runtime.emit(prefs.model or DEFAULT_MODEL, prefs.backend)
    from .window import MainWindow

    return MainWindow(handle, settings.Settings(store), library=library, player=player)


def _parse_options(argv: list[str]) -> None:
    """--help and --version, answered before anything graphical starts (over ssh there is no
    display); Qt's own options (-platform, -style…) and the files pass through to Qt."""
    import argparse

    from engine import version

    parser = argparse.ArgumentParser(
        prog="tingxie",
        description="Tingxie (听写): Mandarin speech-to-text on the desktop. The files given "
        "are queued for transcription (with Tingxie already running, in its window). The "
        "command line tool is tingxie-cli.",
    )
    parser.add_argument("files", nargs="*", help="audio or video files to transcribe")
    parser.add_argument("--version", action="version", version=f"tingxie {version()}")
    parser.parse_known_args(argv[1:])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    _parse_options(argv)
    from pyqtgraph.util.garbage_collector import GarbageCollector
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from engine.library.store import default_path

    from .fonts import cjk_font
    from .instance import SingleInstance

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    qt = QApplication.instance() or QApplication(argv)
    qt.setApplicationName("Tingxie")
    qt.setOrganizationName("Tingxie")
    qt.setFont(cjk_font())
    qt.setDesktopFileName("org.tingxie.Tingxie")  # the desktop entry (Wayland: icon, grouping)
    qt.setWindowIcon(QIcon(str(ICON)))
    # Python's cycle collector runs in whichever thread allocates when its count is due: in the
    # engine thread it would delete unreachable Qt widgets there, and a widget deleted off the
    # GUI thread waits for the GIL while holding Qt's lock, which the GUI thread may want
    # (a deadlock, seen in the test suite). pyqtgraph's collector turns the automatic one off
    # and collects on a GUI-thread timer instead.
    collector = GarbageCollector(interval=1.0)  # noqa: F841 (kept alive while the app runs)
    # Files given on the command line (the desktop launcher's %F) are queued for transcription;
    # with Tingxie already running on this library, they go to its window instead.
    files = [a for a in qt.arguments()[1:] if not a.startswith("-")]
    folder = default_path().parent
    try:
        instance = SingleInstance(folder)
    except OSError as e:  # a file in its way, a read-only home: nothing can be kept
        from PySide6.QtWidgets import QMessageBox

        from .i18n import tr

        message = tr("app.no_data_folder", path=str(folder), detail=e.strerror or str(e))
        logging.error("%s", message)
        QMessageBox.critical(None, tr("dialog.error"), message)
        return 1
    if not instance.claim(files):
        return 0
    window = build_window()

    def bring_forward(paths: list[str]) -> None:
        window.add_files(paths)
        window.showNormal()
        window.raise_()
        window.activateWindow()

    instance.files_received.connect(bring_forward)
    window.show()
    window.start()
    window.add_files(files)
    return qt.exec()


if __name__ == "__main__":
    sys.exit(main())
