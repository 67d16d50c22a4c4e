"""Shared fixtures. No test touches the network: the Hub is forced offline here."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from pathlib import Path

import pytest

SHARED_AUDIO = Path(__file__).resolve().parents[1].parent / "shared" / "audio"


@pytest.fixture(scope="session", autouse=True)
def _private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The main window opens the user's transcript library by default, and large models are
    converted into the user's cache: in tests those are temporary folders, never the user's."""
    os.environ.setdefault("TINGXIE_DATA_DIR", str(tmp_path_factory.mktemp("tingxie-data")))
    os.environ.setdefault("TINGXIE_WEIGHTS_CACHE", str(tmp_path_factory.mktemp("weights")))


@pytest.fixture(autouse=True)
def _collect_garbage_in_the_gui_thread(request: pytest.FixtureRequest):
    """As the app does (app.main): during a Qt test the cycle collector runs only on a timer
    in the GUI thread, and after the test (its widgets closed, its worker stopped) once more
    there. Otherwise a widget of an earlier test could be collected in a worker thread and
    deadlock with the GUI thread (seen: the engine thread deleting a QMenu, waiting for the
    GIL while holding Qt's lock, and the main thread waiting for that lock)."""
    if "qtbot" not in request.fixturenames:
        yield
        return
    import gc

    from pyqtgraph.util.garbage_collector import GarbageCollector

    collector = GarbageCollector(interval=1.0)
    try:
        yield
    finally:
        collector.timer.stop()
        gc.enable()
        gc.collect()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer wav2vec2 CTC checkpoint with a Chinese character vocabulary."""
    from engine.testmodels import build_model

    return build_model(tmp_path_factory.mktemp("tiny-model"), "tiny", seed=0)


@pytest.fixture(scope="session")
def shared_audio() -> Path:
    """Real Mandarin clips beside the checkout (../shared/audio); skip where absent."""
    if not (SHARED_AUDIO / "manifest.tsv").is_file():
        pytest.skip("../shared/audio is not present beside this checkout")
    return SHARED_AUDIO


@pytest.fixture
def small_disk(tmp_path):
    """`small_disk(bytes)`: a folder on a tmpfs of that size, so a write fills a real
    filesystem (ENOSPC) as a full disk would. Skips where mounting is not allowed (not root)."""
    import contextlib
    import subprocess

    mounts = []

    def make(size: int) -> Path:
        where = tmp_path / f"disk-{len(mounts)}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small filesystem here: {done.stderr.strip()}")
        mounts.append(where)
        return where

    yield make
    for where in mounts:
        with contextlib.suppress(OSError):
            subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def lock_folder():
    """`lock_folder(path)`: the folder (made empty where missing) can no longer be written, with
    what was put in it before still there; undone at teardown. By its mode for a user; for root,
    who writes past any mode (CI runs as root), by a read-only bind mount of the folder onto
    itself (a tmpfs would hide what it holds). Skips only where root cannot mount."""
    import subprocess

    locked: list[Path] = []

    def lock(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        locked.append(folder)
        if os.geteuid() != 0:
            folder.chmod(0o555)
            return folder
        for options in (["--bind", str(folder)], ["-o", "remount,bind,ro"]):
            done = subprocess.run(["mount", *options, str(folder)], capture_output=True, text=True)
            if done.returncode != 0:
                pytest.skip(f"cannot mount {folder} read-only here: {done.stderr.strip()}")
        return folder

    yield lock
    for folder in reversed(locked):
        if os.geteuid() != 0:
            folder.chmod(0o755)
        else:  # (a folder whose bind failed is no mount point: umount then fails, harmlessly)
            subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


@pytest.fixture
def tiny_with_lm(tiny_model_dir, tmp_path):
    """The tiny random model, copied, with a language model over its vocabulary."""
    import json
    import shutil

    from engine.lm import build_model_lm

    folder = tmp_path / "tiny-lm"
    shutil.copytree(tiny_model_dir, folder)
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    corpus = tmp_path / "text.txt"
    corpus.write_text("".join(t for t in vocab if len(t) == 1 and t != "|")[:200], "utf-8")
    build_model_lm(folder, [corpus], order=2)
    return folder


@pytest.fixture
def noise_and_domain_text(tiny_with_lm, tmp_path) -> tuple[Path, Path]:
    """2 s of noise as a 16-bit WAV, and a domain text over the tiny model's characters: the
    tiny model's logits on it are near-uniform, so its decodes are full of ties."""
    import json

    import numpy as np
    import soundfile as sf

    vocab = json.loads((tiny_with_lm / "vocab.json").read_text(encoding="utf-8"))
    chars = "".join(t for t in vocab if len(t) == 1 and t != "|")
    domain = tmp_path / "domain.txt"
    domain.write_text("\n".join(chars[i : i + 6] for i in range(0, 60, 3)), encoding="utf-8")
    audio = tmp_path / "noise.wav"
    rng = np.random.default_rng(3)
    sf.write(audio, rng.normal(scale=0.1, size=16_000 * 2).astype(np.float32), 16_000)
    return audio, domain


@pytest.fixture
def dialogs(monkeypatch):
    """The texts of every QMessageBox.warning / information shown, answered Ok (a modal box
    would wait for a click forever here). Some app tests override it to record more."""
    from PySide6.QtWidgets import QMessageBox

    shown = []

    def capture(parent, title, text, *args, **kwargs):
        shown.append(text)
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "warning", capture)
    monkeypatch.setattr(QMessageBox, "information", capture)
    return shown
