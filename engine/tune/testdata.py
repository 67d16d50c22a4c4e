"""Tiny synthetic tuning corpora the project builds itself (no download), for tests and benches.

Each character is a pure tone of its own pitch followed by a short silence, so even a 2-layer
random model can learn the mapping in a few dozen steps: plumbing and speed, not accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.audio import SAMPLE_RATE, write_wav

__all__ = ["tone_corpus"]

# Lowest tone and the spacing between characters' tones (Hz).
_BASE_HZ, _STEP_HZ = 300.0, 150.0


def _clip(text: str, chars: str, char_seconds: float, rng: np.random.Generator) -> np.ndarray:
    tone = np.arange(int(char_seconds * SAMPLE_RATE)) / SAMPLE_RATE
    gap = np.zeros(int(0.3 * char_seconds * SAMPLE_RATE), dtype=np.float32)
    parts = []
    for c in text:
        hz = _BASE_HZ + _STEP_HZ * chars.index(c)
        parts += [0.5 * np.sin(2 * np.pi * hz * tone).astype(np.float32), gap]
    audio = np.concatenate(parts)
    return audio + 0.01 * rng.standard_normal(len(audio)).astype(np.float32)


def tone_corpus(
    folder: str | Path,
    n: int,
    *,
    chars: str = "天地人和",
    min_chars: int = 2,
    max_chars: int = 4,
    char_seconds: float = 0.15,
    seed: int = 0,
) -> Path:
    """Write `n` clips under folder/clips and a manifest.tsv (path, text; relative paths);
    returns the manifest path."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    rows = ["path\ttext"]
    for k in range(n):
        text = "".join(rng.choice(list(chars), int(rng.integers(min_chars, max_chars + 1))))
        name = f"clips/u{k:04d}.wav"
        write_wav(folder / name, _clip(text, chars, char_seconds, rng))
        rows.append(f"{name}\t{text}")
    manifest = folder / "manifest.tsv"
    manifest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return manifest
