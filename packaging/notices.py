"""Write resources/THIRD_PARTY_NOTICES.md: every library Tingxie runs on (its runtime
dependencies from pyproject.toml, the extras the bundle carries, and theirs, as installed),
the fonts and the models it uses or ships, with their licenses. The About dialog shows the
file and a bundle carries it.

    .venv/bin/python packaging/notices.py      # after changing dependencies
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "resources" / "THIRD_PARTY_NOTICES.md"

# Not Python packages, or not described by their package metadata.
OTHERS = [
    ("Qt 6 (through PySide6)", "LGPL-3.0-only", "the Qt Company; the GUI toolkit"),
    ("FFmpeg (inside the PyAV wheel)", "LGPL-2.1-or-later", "audio and video decoding"),
    ("libsndfile (inside the soundfile wheel)", "LGPL-2.1-or-later", "audio file reading"),
    ("PortAudio (the libportaudio2 system library)", "MIT", "microphone capture"),
    ("Noto Sans CJK SC (the fonts-noto-cjk font)", "OFL-1.1", "Chinese text in the UI"),
    ("Silero VAD model (inside the silero-vad wheel)", "MIT", "pause detection"),
    (
        "Whisper-base weights (OpenAI; CTranslate2 conversion)",
        "MIT",
        "real-voice model, fetched by packaging/fetch-whisper-base.py, not shipped",
    ),
    (
        "KenLM (inside the flashlight-text wheel)",
        "LGPL-2.1-or-later",
        "n-gram queries, shipped with the beam search; Tingxie's own n-grams (engine/ngram.py) "
        "are used instead",
    ),
    (
        "Tingxie demo model (resources/demo-model)",
        "Apache-2.0",
        "trained by this project on speech synthesized with espeak-ng (GPL-3.0, used as a tool, "
        "not shipped) from template sentences and 60,000 Tatoeba sentences (CC-BY 2.0 FR, "
        "https://tatoeba.org); its lm/ is a character 4-gram of that text",
    ),
    (
        "Tatoeba sentences (resources/corpus/punctuation/train-tatoeba.txt)",
        "CC-BY 2.0 FR",
        "shipped text the punctuation model is retrained on, which the demo model's everyday "
        "stages trained on too; by the Tatoeba contributors, https://tatoeba.org (as exported "
        "by krmanik/hsk-graded-sentences, cleaned)",
    ),
    (
        "Tingxie punctuation model (resources/punctuation)",
        "Apache-2.0",
        "trained by this project on Tatoeba sentences (CC-BY 2.0 FR, https://tatoeba.org; "
        "export of krmanik/hsk-graded-sentences)",
    ),
]


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0)


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# The optional features the bundle (packaging/tingxie.spec) carries, from pyproject's extras.
BUNDLED_EXTRAS = ("onnx", "parquet")
# Packages no requirement names, which libraries above import where present (requests' and
# transformers' optional imports): PyInstaller follows such imports into the bundle.
IMPORTED_WHERE_PRESENT = ("certifi", "charset-normalizer", "pillow")


def runtime_packages() -> list[str]:
    """Installed distributions Tingxie runs on: pyproject's dependencies and the extras the
    bundle carries, and theirs (extras and environment-specific requirements that do not
    apply are skipped), and what the bundle takes in besides."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    todo = [_name(r) for r in project["dependencies"]]
    todo += [_name(r) for extra in BUNDLED_EXTRAS for r in extras[extra]]
    todo += IMPORTED_WHERE_PRESENT
    seen: dict[str, str] = {}
    while todo:
        name = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a requirement for another platform or Python
        key = _key(dist.metadata["Name"])
        if key in seen:
            continue
        seen[key] = dist.metadata["Name"]
        for requirement in dist.requires or []:
            if "extra ==" not in requirement:
                todo.append(_name(requirement))
    return sorted(seen.values(), key=str.lower)


def license_of(name: str) -> str:
    md = metadata.distribution(name).metadata
    if md.get("License-Expression"):  # SPDX, however long
        return md["License-Expression"].strip()
    text = md.get("License") or ""  # free text: sometimes the whole license
    if not text or len(text) > 60 or "\n" in text:
        classifiers = [c.split(" :: ")[-1] for c in md.get_all("Classifier") or []
                       if c.startswith("License ::")]  # fmt: skip
        text = ", ".join(classifiers) or "see the package"
    return text.strip()


def render() -> str:
    lines = [
        "# Third-party notices",
        "",
        "Tingxie (Apache-2.0) runs on the following software and models. Each is used under its",
        "own license; the full texts come with each package (its `*.dist-info` folder) or at",
        "the project's home page.",
        "",
        "## Libraries, fonts and models",
        "",
        "| component | license | used for |",
        "| --- | --- | --- |",
        *[f"| {name} | {lic} | {use} |" for name, lic, use in OTHERS],
        "",
        "## Python packages",
        "",
        "| package | version | license |",
        "| --- | --- | --- |",
    ]
    for name in runtime_packages():
        if _key(name) == "tingxie":
            continue
        lines.append(f"| {name} | {metadata.version(name)} | {license_of(name)} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
