"""Third-party notices name everything Tingxie runs on: regenerate
resources/THIRD_PARTY_NOTICES.md (packaging/notices.py) when dependencies change."""

from __future__ import annotations

import importlib.util
from importlib import metadata
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


def _rows() -> dict[str, list[str]]:
    text = (ROOT / "resources" / "THIRD_PARTY_NOTICES.md").read_text(encoding="utf-8")
    return {cells[0]: cells[1:] for line in text.splitlines() if line.startswith("| ")
            for cells in [[c.strip() for c in line.strip("| ").split(" | ")]]}  # fmt: skip


def test_each_package_row_names_the_installed_version():
    """The About dialog's versions are those installed (cryptography had moved on unnoticed),
    as constraints.txt pins them: torch's local label (+cpu, the CPU index's build; PyPI's has
    none) is no other version."""
    notices = _notices_module()
    rows = _rows()

    def public(version: str) -> str:
        return version.split("+")[0]

    installed = {name: metadata.version(name) for name in notices.runtime_packages()}
    wrong = {
        name: (rows[name][0], version)
        for name, version in installed.items()
        if name in rows and public(rows[name][0]) != public(version)
    }
    assert wrong == {}, f"run packaging/notices.py: notices vs installed {wrong}"


def test_tatoeba_is_credited_for_the_demo_model_and_the_shipped_text():
    """The demo model's everyday stages and its lm/ 4-gram come from Tatoeba (CC-BY 2.0 FR),
    and the wheel ships corpus/punctuation/train-tatoeba.txt itself."""
    rows = _rows()
    demo = next(" | ".join(v) for k, v in rows.items() if k.startswith("Tingxie demo model"))
    assert "Tatoeba" in demo and "CC-BY 2.0 FR" in demo and "lm/" in demo
    text = next(k for k in rows if "corpus/punctuation/train-tatoeba.txt" in k)
    assert rows[text][0] == "CC-BY 2.0 FR"
