"""Entry point of the `tingxie` desktop app."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, NoReturn

from engine.shipped import resource

if TYPE_CHECKING:
    from .window import MainWindow

__all__ = [
    "ICON",
    "bring_forward",
    "build_window",
    "main",
    "no_display",
    "tell_damaged_settings",
]

ICON = resource("icons", "org.tingxie.Tingxie.svg")


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


def no_display(argv: list[str], environ: Mapping[str, str] | None = None) -> str | None:
    """Why Qt could not open a window on Linux (over ssh, in a container): Qt itself would abort
    with advice to reinstall. None where a display, or a platform (QT_QPA_PLATFORM,
    -platform offscreen), is given, and on macOS and Windows, which always have one."""
    environ = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return None
    given = ("DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET", "QT_QPA_PLATFORM")
    if any(environ.get(name) for name in given):
        return None
    runtime = environ.get("XDG_RUNTIME_DIR")
    wayland = environ.get("XDG_SESSION_TYPE") == "wayland"  # not ssh into a machine running one
    if wayland and runtime and os.path.exists(os.path.join(runtime, "wayland-0")):
        return None  # Wayland's default socket, which Qt finds with WAYLAND_DISPLAY unset
    if any(a in ("-platform", "--platform") for a in argv[1:]):
        return None
    return (
        "tingxie: no graphical display (DISPLAY and WAYLAND_DISPLAY are unset): run Tingxie "
        "on a desktop session, or use tingxie-cli on the command line"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    _parse_options(argv)
    reason = no_display(argv)
    if reason is not None:
        print(reason, file=sys.stderr)
        return 1
    from pyqtgraph.util.garbage_collector import GarbageCollector
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from engine.library.store import default_path

    from . import settings
    from .fonts import cjk_font
    from .i18n import set_language
    from .instance import SingleInstance

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    qt = QApplication.instance() or QApplication(argv)
    qt.setApplicationName("Tingxie")
    qt.setOrganizationName("Tingxie")
    # The saved language from the start (the settings' place needs the names above): what is
    # said before the window opens, a data folder that cannot be made, was always Chinese.
    set_language(settings.load(settings.open_settings()).language)
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
        from .plain import literal

        message = tr("app.no_data_folder", path=str(folder), detail=e.strerror or str(e))
        logging.error("%s", message)
        QMessageBox.critical(None, tr("dialog.error"), literal(message))
        return 1
    if not instance.claim(files):
        return 0
    window = build_window()
    instance.files_received.connect(lambda paths: bring_forward(window, paths))
    # Closing, the window queues nothing: a later start that finds the app quitting keeps its
    # files (and opens its own window once this one has quit) instead of handing them over to
    # be lost. Told before the window waits for the engine, so that the later start knows at
    # once rather than after its wait for an answer.
    window.closing.connect(instance.stop_listening)
    window.show()
    window.start()
    window.add_files(files)
    tell_damaged_settings(window)
    status = qt.exec()
    busy = _still_busy(window)
    if busy:
        _leave_unfinished(status, busy)
    return status


def tell_damaged_settings(window: MainWindow) -> None:
    """Say once, as the app starts, that the settings file did not read (what was used, and
    where the file as found is kept): the model or language may not be the user's."""
    damaged = window.settings.damaged
    if damaged is not None:
        window.show_error("settings", damaged.message())


def bring_forward(window: MainWindow, paths: list[str]) -> None:
    """Queue files a later start handed over and bring the window to the front: out of the
    taskbar when minimized, else as it is (maximized and full screen stay so)."""
    from PySide6.QtCore import Qt

    window.add_files(paths)
    window.setWindowState(window.windowState() & ~Qt.WindowState.WindowMinimized)
    window.show()
    window.raise_()
    window.activateWindow()


def _still_busy(window: MainWindow) -> list[str]:
    """What still runs in a thread of its own after the close's wait, for the log: the engine
    (a model download or its int8 copy) and the Tune page's supervisor (the data check of a
    large training set, or a new job's sources being combined)."""
    busy = []
    if window.handle.thread is not None:
        busy.append("the engine (a model loading)")
    tune = window.tune_page
    if tune is not None and tune.handle.thread is not None:
        busy.append("the tuning supervisor (reading training data)")
    return busy


def _leave_unfinished(status: int, busy: list[str]) -> NoReturn:
    """End the process while threads still run (`_still_busy`): Python would destroy their
    running QThreads on the way out, and Qt aborts on that. What they were doing is dropped
    (a check's result has no page left to show it); the window has saved what it holds and
    closed the library, the settings are saved as they change, and a tuning job runs in a
    process of its own."""
    logging.getLogger("tingxie.app").warning(
        "%s still busy; leaving it unfinished", " and ".join(busy)
    )
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    sys.exit(main())
