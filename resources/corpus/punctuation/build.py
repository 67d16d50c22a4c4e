"""Build the punctuation model's text: training sentences (Tatoeba; optionally a sample of
Chinese laws, the Common Voice sentence collector, dialogues and children's stories) and
held-out sentences from a different source (the HSK 3.0 graded sentences), all cleaned the same
way.

    .venv/bin/python resources/corpus/punctuation/build.py \
        --tatoeba cmn_sentences.tsv --hsk sentences.json \
        --laws Laws/ --common-voice sentence-collector.txt \
        --kdconv KdConv/ --crosswoz CrossWOZ/ --stories global-asp/

`cmn_sentences.tsv` is `data/cmn_sentences.tsv` of the public repository
krmanik/hsk-graded-sentences (Tatoeba's Mandarin export, CC-BY 2.0 FR); `sentences.json` is
`hsk_sentences_audio/data/sentences.json` inside the PyPI wheel hsk-sentences-audio==1.0.0
(CC-BY-SA-4.0); `Laws/` a checkout of the public repository LawRefBook/Laws (commit 2f4c5c23;
laws, regulations and judicial interpretations, public domain under Art. 5 of the Copyright
Law of the PRC), read outside its `DLC/` and `案例/` folders; `sentence-collector.txt` the file
of that name in the public repository MozillaChina/common-voice-fix (commit 0cf49c0fd8d7, CC0).
Each source is optional: without --tatoeba/--hsk the committed `heldout-hsk.txt` and
`train-tatoeba.txt` are read back (for the filtering below) instead of rebuilt. Deterministic.
`train-tatoeba.txt` and `heldout-hsk.txt` are committed; `train-laws.txt`,
`train-commonvoice.txt`, `train-dialogue.txt` (KdConv and CrossWOZ, public repositories
thu-coai/KdConv and thu-coai/CrossWOZ, Apache-2.0) and `train-stories.txt` (global-asp/global-asp,
its CC-BY stories) are not (tried, no better on the held-out text; README.md says what each file
holds).

Every line is Simplified (OpenCC t2s), Han characters only (a line with Latin letters, digits or
symbols is dropped: speech models write none of them), 2-60 characters, ends with a sentence
mark, and has its punctuation rewritten to the five marks the model restores (，。？！、;
quotes and brackets dropped). No training line equals a held-out line or a transcript of the
shared audio clips (../shared/audio/manifest.tsv), characters compared without punctuation, and
no line of a later source repeats one of an earlier (Tatoeba, laws, Common Voice, dialogues,
stories).

The laws are very formal and comma-dense, so only a sample goes in: LAW_SAMPLE sentences of
6-LAW_MAX_CHARS characters, drawn with a fixed seed (about a third of Tatoeba's characters).
An article's number (第十条) and an item's (（一）) are dropped; articles are split into
sentences at 。？！.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

from engine.punctuation import is_mark, mark_of  # noqa: E402

MANIFEST = ROOT.parent / "shared" / "audio" / "manifest.tsv"
MIN_CHARS, MAX_CHARS = 2, 60
FINAL = "。？！"
LAW_SAMPLE = 10_000
LAW_MIN_CHARS, LAW_MAX_CHARS = 6, 40
_LAW_SKIP = ("DLC", "案例")
_ARTICLE = re.compile(r"^第[一二三四五六七八九十百千零〇]+条\s*")
_ITEM = re.compile(r"^[（(][一二三四五六七八九十]+[）)]\s*")
_SENTENCE = re.compile(r"[^。？！]+[。？！]+")


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


def _read_lines(path: Path) -> list[str]:
    return [s for s in path.read_text(encoding="utf-8").split("\n") if s.strip()]


def _write_lines(path: Path, lines) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _tatoeba_lines(tatoeba: Path):
    with tatoeba.open(encoding="utf-8") as f:
        for row in f:
            parts = row.rstrip("\n").split("\t")
            if len(parts) >= 3:
                yield parts[-1]


def _law_lines(laws: Path):
    """The sentences of every law text (Markdown after its `<!-- INFO END -->` header)."""
    for path in sorted(laws.rglob("*.md")):
        rel = path.relative_to(laws).parts
        if len(rel) == 1 or rel[0] in _LAW_SKIP or path.name == "_index.md":
            continue
        text = path.read_text(encoding="utf-8").split("<!-- INFO END -->", 1)[-1]
        for line in text.splitlines():
            line = _ITEM.sub("", _ARTICLE.sub("", line.strip()))
            if line and not line.startswith(("#", "<")):
                yield from _SENTENCE.findall(line)


def _dialogue_turns(folder: Path, key: str):
    """Every turn's text (`messages[].<key>`) of the dialogue files under `folder`: KdConv's
    `data/*/{dev,test}.json` (key `message`), CrossWOZ's `data/crosswoz/{test,val}.json.zip`
    (key `content`); training splits, over 4 MiB, are left out (the mirror lacks them)."""
    for path in sorted(folder.rglob("*.json*")):
        if path.name.startswith("train") or path.name.startswith("kb_"):
            continue
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as z:
                data = json.loads(z.read(z.namelist()[0]).decode("utf-8"))
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
        dialogues = data.values() if isinstance(data, dict) else data
        for dialogue in dialogues:
            for message in dialogue["messages"]:
                yield from _SENTENCE.findall(message.get(key, ""))


def _story_lines(folder: Path):
    """The sentences of Global ASP's Chinese stories (`zh/*.md`) whose license line says
    CC-BY (the CC-BY-NC ones are left out)."""
    for path in sorted((folder / "zh").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        if "* License: [CC-BY]" not in text:
            continue
        for line in text.splitlines():
            if line.strip() and not line.startswith(("#", "*")):
                yield from _SENTENCE.findall(line)


def _filtered(lines, convert, banned: set[str], counts: dict, name: str) -> dict[str, str]:
    """Cleaned lines keyed by their characters; those in `banned` dropped (and counted)."""
    kept: dict[str, str] = {}
    for line in lines:
        s = clean(line, convert)
        if s is None:
            continue
        key = plain(s)
        if key in banned:
            counts[f"{name}_dropped_overlap"] = counts.get(f"{name}_dropped_overlap", 0) + 1
            continue
        kept.setdefault(key, s)
    return kept


def build(
    out: Path,
    manifest: Path,
    tatoeba: Path | None = None,
    hsk: Path | None = None,
    laws: Path | None = None,
    common_voice: Path | None = None,
    kdconv: Path | None = None,
    crosswoz: Path | None = None,
    stories: Path | None = None,
) -> dict[str, int]:
    import opencc

    convert = opencc.OpenCC("t2s").convert
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    if hsk is not None:
        heldout: dict[str, str] = {}
        for item in json.loads(hsk.read_text(encoding="utf-8")):
            s = clean(item["chinese"], convert)
            if s is not None:
                heldout.setdefault(plain(s), s)
        _write_lines(out / "heldout-hsk.txt", heldout.values())
    held = _read_lines(out / "heldout-hsk.txt")
    counts["heldout"] = len(held)
    banned = {plain(s) for s in held} | _manifest_texts(manifest)
    if tatoeba is not None:
        train = _filtered(_tatoeba_lines(tatoeba), convert, banned, counts, "tatoeba")
        _write_lines(out / "train-tatoeba.txt", train.values())
    tatoeba_lines = _read_lines(out / "train-tatoeba.txt")
    counts["tatoeba"] = len(tatoeba_lines)
    banned |= {plain(s) for s in tatoeba_lines}
    if laws is not None:
        found = _filtered(_law_lines(laws), convert, banned, counts, "laws")
        fit = [s for s in found.values() if LAW_MIN_CHARS <= len(plain(s)) <= LAW_MAX_CHARS]
        sample = random.Random(0).sample(fit, min(LAW_SAMPLE, len(fit)))
        _write_lines(out / "train-laws.txt", sample)
        counts["laws_found"], counts["laws"] = len(found), len(sample)
        banned |= {plain(s) for s in sample}
    if common_voice is not None:
        lines = common_voice.read_text(encoding="utf-8").splitlines()
        cv = _filtered(lines, convert, banned, counts, "common_voice")
        _write_lines(out / "train-commonvoice.txt", cv.values())
        counts["common_voice"] = len(cv)
    extra = (
        ("dialogue", (kdconv, "message"), (crosswoz, "content")),
        ("stories", (stories, None)),
    )
    for name, *sources in extra:
        lines = [
            line
            for folder, key in sources
            if folder is not None
            for line in (_story_lines(folder) if key is None else _dialogue_turns(folder, key))
        ]
        if not lines:
            continue
        found = _filtered(lines, convert, banned, counts, name)
        _write_lines(out / f"train-{name}.txt", found.values())
        counts[name] = len(found)
        banned |= set(found)
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tatoeba", type=Path, help="cmn_sentences.tsv")
    p.add_argument("--hsk", type=Path, help="hsk-sentences-audio sentences.json")
    p.add_argument("--laws", type=Path, help="a checkout of LawRefBook/Laws")
    p.add_argument("--common-voice", type=Path, help="Common Voice sentence-collector.txt")
    p.add_argument("--kdconv", type=Path, help="a checkout of thu-coai/KdConv")
    p.add_argument("--crosswoz", type=Path, help="a checkout of thu-coai/CrossWOZ")
    p.add_argument("--stories", type=Path, help="a checkout of global-asp/global-asp")
    p.add_argument("--out", type=Path, default=HERE)
    p.add_argument("--manifest", type=Path, default=MANIFEST)
    args = p.parse_args()
    counts = build(
        args.out, args.manifest, args.tatoeba, args.hsk, args.laws, args.common_voice,
        args.kdconv, args.crosswoz, args.stories,
    )  # fmt: skip
    print(", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
