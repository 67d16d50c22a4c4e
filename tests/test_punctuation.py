"""Punctuation: marks ride on the characters (`Char.after`) without moving them, the shipped
model punctuates, and the CLI, the store and review edits carry the marks."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest

from engine.library.review import EditOp, apply_edit, verified_pairs
from engine.library.store import Store
from engine.punctuation import (
    _MAX_WINDOW,
    _PIECE_OVERLAP,
    DEFAULT_DIR,
    MARKS,
    PunctuationError,
    Punctuator,
    default_punctuator,
    gap_features,
    mark_of,
    punctuate_stream,
    split_marks,
)
from engine.results import Char, Progress, Segment
from engine.writers import render


def seg(i: int, text: str, start: float = 0.0, step: float = 0.25, gaps: dict | None = None):
    """A segment whose characters last 0.1 s every `step` s; `gaps` adds seconds after some."""
    chars, t = [], start
    for k, c in enumerate(text):
        chars.append(Char(c, round(t, 3), round(t + 0.1, 3), 0.5 + k / 100))
        t += step + (gaps or {}).get(k, 0.0)
    return Segment(i, chars[0].start, chars[-1].end, tuple(chars))


def marked(segment: Segment, marks: dict[int, str]) -> Segment:
    chars = tuple(replace(c, after=marks.get(k, "")) for k, c in enumerate(segment.chars))
    return replace(segment, chars=chars)


@pytest.fixture(scope="module")
def punctuator() -> Punctuator:
    return default_punctuator()


# ---- pure helpers ------------------------------------------------------------------------


def test_split_marks_and_mark_of():
    assert split_marks("，好吗？对。") == ("好吗对", ["", "？", "。"])
    assert split_marks("他说：“走吧！”") == ("他说走吧", ["", "：“", "", "！”"])
    assert mark_of("：“") == "，" and mark_of("！”") == "！" and mark_of("?!") == "？"
    assert mark_of("“") == "" and mark_of("……") == "。"


def test_gap_features_are_bounded_and_say_whether_times_are_known():
    assert gap_features(None, 2) == [(0.0, 0.0, 0.0)] * 2
    feats = gap_features([0.1, 0.1, 3.0, 99.0], 4)
    assert all(f[0] == 1.0 and 0 <= f[1] <= 1 and 0 <= f[2] <= 1 for f in feats)
    assert feats[2][1] > feats[0][1] and feats[3][1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one per character"):
        gap_features([0.1], 2)


# ---- rendering ---------------------------------------------------------------------------

PUNCTUATED = [
    marked(seg(0, "你好我们走吧"), {1: "，", 5: "。"}),
    marked(seg(1, "你去吗", start=3.0), {2: "？"}),
]


def test_writers_add_marks_and_keep_characters_and_times_aligned():
    assert render(PUNCTUATED, "txt") == "你好，我们走吧。\n你去吗？\n"
    doc = json.loads(render(PUNCTUATED, "json"))
    assert doc["text"] == "你好，我们走吧。\n你去吗？"
    first = doc["segments"][0]
    assert first["text"] == "你好我们走吧" and first["punctuated"] == "你好，我们走吧。"
    assert [c["text"] for c in first["chars"]] == list("你好我们走吧")
    assert [c["start"] for c in first["chars"]] == [c.start for c in PUNCTUATED[0].chars]
    assert [c["after"] for c in first["chars"]] == ["", "，", "", "", "", "。"]
    srt = render(PUNCTUATED, "srt")
    # Chinese subtitles end a line without ，。 (？ stays); inside a line the mark shows.
    assert "\n你好，我们走吧\n" in srt and "\n你去吗？\n" in srt


def test_store_keeps_the_marks(tmp_path):
    with Store(tmp_path / "t.db") as store:
        tid = store.add_transcript(PUNCTUATED)
        again = store.original(tid)
    assert [s.punctuated for s in again] == ["你好，我们走吧。", "你去吗？"]


# ---- review edits and marks --------------------------------------------------------------


def test_a_fix_keeps_the_mark_after_the_span_and_typed_marks_become_marks():
    segments = [marked(seg(0, "他们去公园吗"), {1: "，", 5: "？"})]
    # "公园吗" -> "学校吗": the ？ after the span stays.
    (fixed,) = apply_edit(segments, EditOp(0, 3, 6, "学校吗", "fix"))
    assert fixed.punctuated == "他们，去学校吗？" and fixed.text == "他们去学校吗"
    # Typed punctuation is never a character: it replaces the mark.
    (typed,) = apply_edit(segments, EditOp(0, 0, 2, "她们。", "fix"))
    assert typed.text == "她们去公园吗" and typed.punctuated == "她们。去公园吗？"
    # Deleting a stretch keeps its closing mark after what preceded it.
    (deleted,) = apply_edit(segments, EditOp(0, 5, 6, "", "fix"))
    assert deleted.punctuated == "他们，去公园？"
    # Times stay those of the characters: same length, same times.
    assert [c.start for c in fixed.chars] == [c.start for c in segments[0].chars]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("，", "我们，走吧"),
        ("，走", "我们，走走吧"),
        (" 。 ", "我们。走吧"),
        ("？的", "我们？的走吧"),
    ],
)
def test_a_mark_typed_before_the_new_text_goes_after_the_character_before(typed, expected):
    """It was dropped: fixing 的 in 我们的走吧 as "，" deleted the character and the comma."""
    (fixed,) = apply_edit([seg(0, "我们的走吧")], EditOp(0, 2, 3, typed, "fix"))
    assert fixed.punctuated == expected
    assert fixed.text == expected.replace("，", "").replace("。", "").replace("？", "")
    # At the start of a segment there is no character before: the mark is not written.
    (first,) = apply_edit([seg(0, "我们的走吧")], EditOp(0, 0, 1, "，你", "fix"))
    assert first.punctuated == "你们的走吧"


def test_verified_pairs_count_characters_not_typed_marks():
    segments = [seg(0, "他们去公园")]
    pairs = verified_pairs(segments, [EditOp(0, 0, 2, "她们，", "fix")])
    assert [p.text for _, p in pairs] == ["她们"]


# ---- the shipped model -------------------------------------------------------------------


def test_the_shipped_model_is_small():
    size = sum(f.stat().st_size for f in DEFAULT_DIR.iterdir() if f.is_file())
    assert size < 5_000_000, f"{DEFAULT_DIR} holds {size / 1e6:.1f} MB"


def test_model_loads_and_punctuates_a_sentence(punctuator):
    text = "今天天气很好我们去公园散步吧"
    marks = punctuator.marks(text)
    assert len(marks) == len(text) and set(marks) <= set(MARKS)
    assert marks[-1] in "。！"  # a sentence ends with a sentence mark
    out = punctuator.punctuate_text("今天天气很好我们去公园散步吧")
    assert split_marks(out)[0] == text


def test_a_question_gets_a_question_mark(punctuator):
    assert punctuator.punctuate_text("你明天去北京吗").endswith("吗？")
    assert punctuator.marks("你叫什么名字", [0.15] * 5 + [1.0])[-1] == "？"


def test_punctuating_segments_changes_no_character_time_or_confidence(punctuator):
    segments = [
        seg(0, "我昨天去了超市买了很多水果", gaps={5: 0.4}),
        seg(1, "你今天有空吗", start=5.0),
    ]
    out = punctuator.punctuate(segments)
    for before, after in zip(segments, out, strict=True):
        assert [(c.text, c.start, c.end, c.confidence) for c in after.chars] == [
            (c.text, c.start, c.end, c.confidence) for c in before.chars
        ]
    assert out[1].punctuated.endswith("吗？")
    assert out[0].chars[-1].after  # a 1 s pause and a new sentence follow


def test_a_character_of_several_letters_gets_its_mark_after_it(punctuator):
    """Vocabularies with tokens such as "ok" (bilingual checkpoints): each is read spelled out,
    with its mark after it. Before: a ValueError ("13 gaps for 14 characters"), and the file
    failed."""
    tokens = ["你", "明", "天", "去", "北", "京", "ok", "吗"]
    start = 3.0  # after a segment of its own, which the window holds too
    chars = tuple(Char(t, start + 0.25 * i, start + 0.25 * i + 0.1, 0.9)
                  for i, t in enumerate(tokens))  # fmt: skip
    segment = Segment(1, start, chars[-1].end, chars)
    before, out = punctuator.punctuate([seg(0, "我们明天见"), segment])
    assert [replace(c, after="") for c in out.chars] == list(chars)
    assert [c.after for c in out.chars] == [""] * 7 + ["？"]
    assert before.chars[-1].after


def test_whisper_segments_with_their_own_punctuation_are_left_alone(punctuator):
    whisper = seg(0, "你好。我们走吧")
    assert punctuator.punctuate_one(whisper) is whisper


def test_long_text_is_read_in_overlapping_pieces(punctuator):
    """Text over one window (600 characters, in no repeating pattern that could hide a shift)
    is read in pieces: each character keeps the mark that one read of a window around it gives
    where it lies at least the overlap from that window's cut edges, so a piece's marks
    stitched at the wrong place show."""
    phrases = ["我们今天去公园散步", "然后回家吃饭", "你明天来不来", "他说这个问题很重要"]
    phrases += ["大家都觉得很好", "下午开会讨论一下", "好的没问题"]
    rng, text = random.Random(0), ""
    while len(text) < 600:
        text += rng.choice(phrases)
    text = text[:600]
    marks = punctuator.marks(text)
    assert len(marks) == len(text) and sum(map(bool, marks)) > 50
    for lo in (0, 100, len(text) - _MAX_WINDOW):  # whole windows whose insides cover the text
        hi = lo + _MAX_WINDOW
        a = lo if lo == 0 else lo + _PIECE_OVERLAP
        b = hi if hi == len(text) else hi - _PIECE_OVERLAP
        assert marks[a:b] == punctuator.marks(text[lo:hi])[a - lo : b - lo], (a, b)


def test_punctuate_stream_holds_one_segment_and_keeps_everything_else(punctuator):
    def items():
        yield Progress(1, 3)
        yield seg(0, "你好")
        yield Progress(2, 3)
        yield seg(1, "你去吗", start=2.0)
        return "info"

    out = []
    stream = punctuate_stream(items(), punctuator)
    while True:
        try:
            out.append(next(stream))
        except StopIteration as stop:
            assert stop.value == "info"
            break
    kinds = [type(x).__name__ for x in out]
    # segment 0 waits for segment 1 (its pause and continuation), so progress 2 comes first
    assert kinds == ["Progress", "Progress", "Segment", "Segment"]
    assert out[3].punctuated.endswith("？")
    assert list(punctuate_stream(iter([1, 2]), None)) == [1, 2]


def test_a_missing_model_says_what_to_do(tmp_path):
    with pytest.raises(PunctuationError) as e:
        Punctuator.load(tmp_path)
    assert e.value.code == "punctuation.load_failed"
    assert "--no-punctuation" in str(e.value) and str(tmp_path) in str(e.value)


def test_f1_on_held_out_text_from_another_source(punctuator):
    """A guard on the bench's figures (bench/bench_punctuation.py, all 4 349 sentences): the
    first 800 held-out sentences with simulated pauses measure ，0.41 。0.85 ？0.93; each
    bound leaves a margin below that. The issue's targets are ，。 >= 0.70, ？ >= 0.60: met for
    。 and ？, not for ， (0.40 on the whole set, README)."""
    from engine.tune.punctuation_train import ROOT, passages, predict, read_sentences, score

    heldout = ROOT / "resources" / "corpus" / "punctuation" / "heldout-hsk.txt"
    items = passages(read_sentences(heldout)[:800], seed=101)
    f1 = score(*predict(punctuator, items, seed=101, timed=True)).f1
    assert f1["，"] >= 0.3 and f1["。"] >= 0.75 and f1["？"] >= 0.75, f1


# ---- the command line --------------------------------------------------------------------


def test_cli_punctuates_by_default_and_not_with_no_punctuation(tmp_path, capsys, monkeypatch):
    """The CLI path with a stand-in speech model (the punctuation is what is tested)."""
    from engine.cli import main
    from engine.cli import transcribe as cli

    class Fake:
        def transcribe(self, path, options):
            return iter([seg(0, "我们走吧"), seg(1, "你去吗", start=3.0)]), _Info()

    class _Info:
        duration = 5.0

        def decoded(self, last):  # as TranscriptionInfo: the length read
            return self

        def __getattr__(self, name):
            return ""

    monkeypatch.setattr(cli, "load_model", lambda source, options: _Model())
    monkeypatch.setattr(cli, "transcriber_for", lambda model: Fake())
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"")
    assert main(["transcribe", str(audio), "--out", str(tmp_path / "on")]) == 0
    assert (tmp_path / "on" / "a.txt").read_text(encoding="utf-8").splitlines()[1] == "你去吗？"
    rc = main(["transcribe", str(audio), "--out", str(tmp_path / "off"), "--no-punctuation"])
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "off" / "a.txt").read_text(encoding="utf-8") == "我们走吧\n你去吗\n"


class _Model:
    device, precision, attention = "cpu", "fp32", "eager"


def test_a_long_pause_after_a_finished_clause_gets_a_mark(punctuator):
    """The pause input is read: two clauses with a long silence between them are kept apart."""
    text = "我们走吧他们也来了"
    rng = random.Random(0)
    gaps = [0.12 + rng.uniform(-0.02, 0.02) for _ in text]
    gaps[3] = 1.5
    assert punctuator.marks(text, gaps)[3] in ("。", "！", "，")


def test_training_builds_the_layers_asked_for_and_the_model_loads(tmp_path):
    """`--layers` reaches the network: a stacked model trains a few steps, saves and loads."""
    from engine.tune.punctuation_train import TrainOptions, read_sentences, train

    lines = read_sentences(DEFAULT_DIR.parents[0] / "corpus" / "punctuation" / "train-tatoeba.txt")
    text = tmp_path / "text.txt"
    text.write_text("\n".join(lines[:200]) + "\n", encoding="utf-8")
    out = tmp_path / "model"
    train(TrainOptions(texts=(text,), out=out, steps=3, eval_every=1000, hidden=16, layers=2))
    assert json.loads((out / "config.json").read_text(encoding="utf-8"))["shape"]["layers"] == 2
    loaded = Punctuator.load(out)
    assert loaded.net.rnn.num_layers == 2
    assert len(loaded.marks("你好吗")) == 3
