"""Third-party notices name everything Tingxie runs on: regenerate
resources/THIRD_PARTY_NOTICES.md (packaging/notices.py) when dependencies change."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _notices_module():
    spec = importlib.util.spec_from_file_location("notices", ROOT / "packaging" / "notices.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_runtime_package_is_in_the_notices_with_its_license():
    notices = _notices_module()
    text = (ROOT / "resources" / "THIRD_PARTY_NOTICES.md").read_text(encoding="utf-8")
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()
            if line.startswith("| ")}  # fmt: skip
    missing = [n for n in notices.runtime_packages() if n.lower() != "tingxie" and n not in rows]
    assert missing == [], f"run packaging/notices.py: {missing} are not in the notices"
    for name in ("torch", "transformers", "PySide6_Essentials", "faster-whisper", "keyring"):
        assert notices.license_of(name) in rows[name]
    for component in ("Qt 6", "Noto Sans CJK", "Whisper-base weights", "FFmpeg"):
        assert any(component in key for key in rows), component
