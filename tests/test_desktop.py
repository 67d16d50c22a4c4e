"""Linux desktop integration: the desktop entry and AppStream metainfo validate with the
freedesktop tools, icons exist at the usual sizes, the entry claims the files Tingxie opens, and
`make install-desktop` installs them for the user."""

from __future__ import annotations

import configparser
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP_ID = "org.tingxie.Tingxie"
DESKTOP = ROOT / "packaging" / "desktop" / f"{APP_ID}.desktop"
METAINFO = ROOT / "packaging" / "desktop" / f"{APP_ID}.metainfo.xml"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (packaging/debian-packages.txt lists it)")
    return path


def _entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def test_desktop_entry_validates():
    done = subprocess.run([_tool("desktop-file-validate"), str(DESKTOP)], capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0 and "error" not in done.stdout, done.stdout


def test_appstream_metainfo_validates():
    done = subprocess.run([_tool("appstreamcli"), "validate", "--no-net", str(METAINFO)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_icons_at_the_usual_sizes():
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        png = ROOT / "resources" / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        header = png.read_bytes()[:24]
        assert header[:8] == b"\x89PNG\r\n\x1a\n", png
        assert struct.unpack(">II", header[16:24]) == (size, size), png
    assert _entry(DESKTOP)["Icon"] == APP_ID


def test_the_entry_claims_the_files_tingxie_opens():
    from engine.audio import SUPPORTED_EXTENSIONS

    claimed = set(_entry(DESKTOP)["MimeType"].strip(";").split(";"))
    expected = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg",
                ".m4a": "audio/mp4", ".ogg": "audio/ogg", ".opus": "audio/x-opus+ogg",
                ".aac": "audio/aac", ".mp4": "video/mp4", ".mkv": "video/x-matroska",
                ".mov": "video/quicktime", ".webm": "video/webm"}  # fmt: skip
    for ext, mime in expected.items():
        assert ext in SUPPORTED_EXTENSIONS, ext
        assert mime in claimed, f"{ext}: {mime} missing from MimeType"
    assert "%F" in _entry(DESKTOP)["Exec"]  # several files at once, as the app takes them


def _launched(value: str) -> str:
    """The program an Exec value starts, read as the desktop entry spec says a launcher does:
    the string escapes first (a doubled backslash is one), then the quoted argument's."""
    value = re.sub(r"\\\\", lambda _: "\\", value)
    assert value.startswith('"')
    out, i = [], 1
    while value[i] != '"':
        if value[i] == "\\" and value[i + 1] in '"`$\\':
            i += 1
        out.append(value[i])
        i += 1
    return "".join(out).replace("%%", "%")


@pytest.mark.parametrize("exe", ["/opt/my apps/tingxie", '/home/me/R&D 100%/a$b"c\\d`e|f/tingxie'])
def test_install_desktop_installs_for_the_user(tmp_path, exe):
    """A path with spaces, & | % $ " ` or \\ starts that program (sed had read & and | as its
    own syntax: Exec="/home/me/RExec=tingxieD/…")."""
    data = tmp_path / "share"
    done = subprocess.run(
        ["bash", str(ROOT / "packaging" / "install-desktop.sh")],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_DATA_HOME": str(data),
             "TINGXIE_EXEC": exe},
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    entry = data / "applications" / f"{APP_ID}.desktop"
    exec_value = _entry(entry)["Exec"]
    assert exec_value.endswith('" %F') and _launched(exec_value) == exe
    assert (data / "metainfo" / f"{APP_ID}.metainfo.xml").is_file()
    assert (data / "icons" / "hicolor" / "48x48" / "apps" / f"{APP_ID}.png").is_file()
    assert (data / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg").is_file()
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True,
                               text=True)  # fmt: skip
        assert check.returncode == 0, check.stdout
