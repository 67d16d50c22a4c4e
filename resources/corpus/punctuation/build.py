"""Build the punctuation model's text: training sentences (Tatoeba) and held-out sentences from
a different source (the HSK 3.0 graded sentences), both cleaned the same way.

    .venv/bin/python resources/corpus/punctuation/build.py \
        --tatoeba cmn_sentences.tsv --hsk sentences.json

`cmn_sentences.tsv` is `data/cmn_sentences.tsv` of the public repository
krmanik/hsk-graded-sentences (Tatoeba's Mandarin export, CC-BY 2.0 FR); `sentences.json` is
`hsk_sentences_audio/data/sentences.json` inside the PyPI wheel hsk-sentences-audio==1.0.0
(CC-BY-SA-4.0). Deterministic; the output files are committed (README.md says what they hold).

Every line is Simplified (OpenCC t2s), Han characters only (a line with Latin letters, digits or
symbols is dropped: speech models write none of them), 2-60 characters, ends with a sentence
mark, and has its punctuation rewritten to the five marks the model restores (，。？！、;
quotes and brackets dropped). No training line equals a held-out line or a transcript of the
shared audio clips (../shared/audio/manifest.tsv), characters compared without punctuation.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

from engine.punctuation import is_mark, mark_of  # noqa: E402

MANIFEST = ROOT.parent / "shared" / "audio" / "manifest.tsv"
MIN_CHARS, MAX_CHARS = 2, 60
FINAL = "。？！"


def _is_han(ch: str) -> bool:
    code = ord(ch)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2FFFF
        or 0xF900 <= code <= 0xFAFF
    )


def clean(line: str, convert) -> str | None:
    """The sentence with only Han characters and the five marks, or None to drop it."""
    text = convert(line.strip())
    out: list[str] = []
    run = ""
    for ch in text:
        if ch.isspace():
            continue
        if is_mark(ch):
            run += ch
            continue
        if not _is_han(ch):
            return None
        if out:
            out.append(mark_of(run))
        run = ""
        out.append(ch)
    if not out:
        return None
    out.append(mark_of(run))
    sentence = "".join(out)
    chars = sum(_is_han(c) for c in sentence)
    if not MIN_CHARS <= chars <= MAX_CHARS or sentence[-1] not in FINAL:
        return None
    return sentence


def plain(sentence: str) -> str:
    return "".join(c for c in sentence if not is_mark(c))


def _manifest_texts(path: Path) -> set[str]:
    if not path.is_file():
        print(f"warning: {path} not found; shared clip transcripts not filtered", file=sys.stderr)
        return set()
    with path.open(encoding="utf-8") as f:
        rows = csv.DictReader(f, delimiter="\t")
        return {plain(r["text_for_scoring"].replace(" ", "")) for r in rows}


def build(tatoeba: Path, hsk: Path, out: Path, manifest: Path) -> dict[str, int]:
    import opencc

    convert = opencc.OpenCC("t2s").convert
    heldout: dict[str, str] = {}
    for item in json.loads(hsk.read_text(encoding="utf-8")):
        s = clean(item["chinese"], convert)
        if s is not None:
            heldout.setdefault(plain(s), s)
    banned = set(heldout) | _manifest_texts(manifest)
    train: dict[str, str] = {}
    dropped = 0
    with tatoeba.open(encoding="utf-8") as f:
        for row in f:
            parts = row.rstrip("\n").split("\t")
            s = clean(parts[-1], convert) if len(parts) >= 3 else None
            if s is None:
                continue
            key = plain(s)
            if key in banned:
                dropped += 1
                continue
            train.setdefault(key, s)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train-tatoeba.txt").write_text("\n".join(train.values()) + "\n", encoding="utf-8")
    (out / "heldout-hsk.txt").write_text("\n".join(heldout.values()) + "\n", encoding="utf-8")
    return {"train": len(train), "heldout": len(heldout), "dropped_overlap": dropped}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tatoeba", type=Path, required=True, help="cmn_sentences.tsv")
    p.add_argument("--hsk", type=Path, required=True, help="hsk-sentences-audio sentences.json")
    p.add_argument("--out", type=Path, default=HERE)
    p.add_argument("--manifest", type=Path, default=MANIFEST)
    args = p.parse_args()
    counts = build(args.tatoeba, args.hsk, args.out, args.manifest)
    print(", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
