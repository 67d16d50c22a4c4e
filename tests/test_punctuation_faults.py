"""Faults found in punctuation: the trainer's checks before training (--out, a small text file,
options), how it reads training text, `punctuate_text` keeping every character, and
`--no-punctuation` with a model that writes its own marks (Whisper)."""

from __future__ import annotations

import json
import random

import pytest

from engine.punctuation import MARKS, Vocabulary, default_punctuator
from engine.results import Char, Segment, TranscriptionInfo
from engine.tune import punctuation_train as pt

SENTENCES = [
    "今天天气很好，我们去公园吧。",
    "你吃饭了吗？",
    "我很高兴！",
    "苹果、香蕉和梨都很好吃。",
]


def _text_file(tmp_path, lines: list[str]):
    path = tmp_path / "mine.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def no_training(monkeypatch):
    """Any training step fails the test: what is refused must be refused before training."""

    def batch(self, rng):
        raise AssertionError("training started")

    monkeypatch.setattr(pt._Windows, "batch", batch)


def _train_cli(text, out, *extra: str) -> list[str]:
    return ["--text", str(text), "--out", str(out), "--steps", "2", "--minutes", "0.05",
            "--hidden", "8", *extra]  # fmt: skip


# ---- the trainer's checks ----------------------------------------------------------------


def test_an_out_that_cannot_be_a_folder_is_refused_before_training(tmp_path, capsys, no_training):
    """Before: the check came when saving, after all the training, and the model was lost
    with a NotADirectoryError traceback."""
    text = _text_file(tmp_path, SENTENCES * 10)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n", encoding="utf-8")
    assert pt.main(_train_cli(text, notes / "model")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(notes / "model") in err and "--out" in err
    assert notes.read_text(encoding="utf-8") == "my notes\n"


def test_a_small_text_file_keeps_lines_for_training(tmp_path):
    """Before: 50 development lines at least, so a 40-line file left none to train on and
    training ended in a randrange traceback."""
    text = _text_file(tmp_path, SENTENCES * 10)
    o = pt.TrainOptions(texts=(text,), out=tmp_path / "model", steps=2, eval_every=1000,
                        hidden=8, batch=4)  # fmt: skip
    report = pt.train(o)
    assert report["train_sentences"] + report["dev_sentences"] == 40
    assert 1 <= report["dev_sentences"] <= 40 // 5
    assert (tmp_path / "model" / "config.json").is_file()


def test_a_text_file_too_small_to_train_on_is_refused_naming_it(tmp_path, capsys, no_training):
    text = _text_file(tmp_path, [*SENTENCES, "……"])
    assert pt.main(_train_cli(text, tmp_path / "model")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(text) in err and f" {len(SENTENCES)} " in err and str(pt.MIN_SENTENCES) in err
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize(
    ("flag", "value", "least"), [("--max-window", "8", "12"), ("--eval-every", "0", "1"),
                                 ("--steps", "0", "1"), ("--hidden", "0", "1")],
)  # fmt: skip
def test_options_that_cannot_work_are_refused_naming_the_limit(
    tmp_path, capsys, no_training, flag, value, least
):
    """Before: --max-window below the shortest window (12) and --eval-every 0 crashed in
    training with a bare traceback."""
    text = _text_file(tmp_path, SENTENCES * 10)
    cli = _train_cli(text, tmp_path / "model")
    i = cli.index(flag) if flag in cli else len(cli)
    cli[i : i + 2] = [flag, value]
    assert pt.main(cli) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{flag} {value}" in err and f"{least} or more" in err
    with pytest.raises(pt.TrainingError):
        pt.TrainOptions(**{flag[2:].replace("-", "_"): int(value)})


# ---- reading the training text -----------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "chars", "marks"),
    [
        ("你好,我们走吧.", "你好我们走吧", ["", "，", "", "", "", "。"]),
        ("真的吗?", "真的吗", ["", "", "？"]),
        ("太好了!", "太好了", ["", "", "！"]),
        ("我想一想；明天再说。", "我想一想明天再说", ["", "", "", "，", "", "", "", "。"]),
        ("他说：来吧…", "他说来吧", ["", "，", "", "。"]),
        ("好吗？！", "好吗", ["", "？"]),
        ("我 爱 你。", "我爱你", ["", "", "。"]),
        ("他说：“走吧！”", "他说走吧", ["", "，", "", "！"]),
    ],
)
def test_training_text_is_labelled_as_a_transcript_would_show_it(sentence, chars, marks):
    """Before: only the five full-width marks were read (half-width ones and ；：… taught
    nothing), the last of a run won (？！ taught ！), and spaces were trained on as
    characters. Now each run of punctuation stands for its mark_of, as the corpus's build.py
    writes it."""
    text, labels = pt.labelled(sentence)
    assert (text, [MARKS[k] for k in labels]) == (chars, marks)


def test_a_line_of_punctuation_alone_is_skipped(tmp_path):
    """Before: a window starting in "……" (no characters) raised "empty range for
    randrange()" within a few steps."""
    sentences = [*SENTENCES, "……"]
    assert pt.read_sentences(_text_file(tmp_path, sentences)) == SENTENCES
    vocab = Vocabulary(sorted({c for s in sentences for c in pt.labelled(s)[0]}))
    windows = pt._Windows(sentences, vocab, pt.TrainOptions(batch=8))
    rng = random.Random(0)
    for _ in range(30):
        ids, _, labels = windows.batch(rng)
        assert ids.shape == labels.shape and ids.shape[1] >= 12


# ---- punctuate_text ----------------------------------------------------------------------


def _only_adds_marks(typed: str, out: str) -> bool:
    """Whether `out` is `typed` with marks of MARKS inserted, nothing removed or changed."""
    k = 0
    for ch in out:
        if k < len(typed) and ch == typed[k]:
            k += 1
        elif ch not in MARKS[1:]:
            return False
    return k == len(typed)


@pytest.mark.parametrize(
    "typed",
    ["50%的人", "马丁·路德·金说", "don't", "e-mail地址", "他说：“你好”", "《红楼梦》很好看",
     "你好，世界。你好吗？", "我用 iPhone 打电话", "今天天气很好我们去公园吧"],
)  # fmt: skip
def test_punctuate_text_never_removes_a_character(typed):
    """Before: any punctuation was dropped first ("50%的人" -> "50的人", "don't" -> "dont")."""
    out = default_punctuator().punctuate_text(typed)
    assert _only_adds_marks(typed, out), (typed, out)


def test_punctuate_text_still_adds_marks_to_plain_text():
    assert default_punctuator().punctuate_text("你明天去北京吗").endswith("吗？")


# ---- --no-punctuation with Whisper ---------------------------------------------------------


def _whisper_like(i: int, text: str, start: float) -> Segment:
    """Characters as engine.whisper.word_chars makes them: marks are characters of no length."""
    chars, t = [], start
    for ch in text:
        if ch in "，。？":
            chars.append(Char(ch, t, t, 0.9))
        else:
            chars.append(Char(ch, t, round(t + 0.2, 3), 0.8))
            t = round(t + 0.25, 3)
    return Segment(i, chars[0].start, chars[-1].end, tuple(chars))


@pytest.fixture
def whisper_cli(monkeypatch):
    """The CLI with a stand-in Whisper model (its segments hold their own marks)."""
    from engine.cli import transcribe as cli

    segments = [
        _whisper_like(0, "好的，我们走吧。", 0.0),
        _whisper_like(1, "你去吗？", 3.0),
        _whisper_like(2, "。", 5.0),
    ]

    info = TranscriptionInfo("a.wav", 6.0, 16_000, "whisper", "cpu", "fp32", "eager", "max_prob")

    class Fake:
        def transcribe(self, path, options):
            return iter(segments), info

    class Model:
        device, precision, attention = "cpu", "fp32", "eager"

    monkeypatch.setattr(cli, "load_model", lambda source, options: Model())
    monkeypatch.setattr(cli, "transcriber_for", lambda model: Fake())
    return segments


def test_no_punctuation_drops_whisper_marks_and_keeps_the_characters(tmp_path, whisper_cli):
    """Before: --no-punctuation ("the characters without punctuation") still wrote Whisper's
    ，。？ in TXT and JSON."""
    from engine.cli import main

    audio = tmp_path / "a.wav"
    audio.write_bytes(b"")
    out = tmp_path / "off"
    argv = ["transcribe", str(audio), "--out", str(out), "--no-punctuation", "--format", "txt,json"]
    assert main(argv) == 0
    assert (out / "a.txt").read_text(encoding="utf-8") == "好的我们走吧\n你去吗\n"
    written = json.loads((out / "a.json").read_text(encoding="utf-8"))["segments"]
    assert [s["text"] for s in written] == ["好的我们走吧", "你去吗"]
    spoken = [c for s in whisper_cli for c in s.chars if c.text not in "，。？"]
    kept = [(c["text"], c["start"], c["end"], c["confidence"]) for s in written for c in s["chars"]]
    assert kept == [(c.text, c.start, c.end, c.confidence) for c in spoken]


def test_whisper_marks_are_kept_without_no_punctuation(tmp_path, whisper_cli):
    from engine.cli import main

    audio = tmp_path / "a.wav"
    audio.write_bytes(b"")
    assert main(["transcribe", str(audio), "--out", str(tmp_path / "on")]) == 0
    text = (tmp_path / "on" / "a.txt").read_text(encoding="utf-8")
    assert text.splitlines()[:2] == ["好的，我们走吧。", "你去吗？"]


def test_punctuating_keeps_the_space_between_two_latin_words():
    """A Whisper segment without marks of its own (or a typed fix, punctuated again) came out
    "我们学习DeepLearning。": the model's "no mark" replaced the space after "Deep"."""
    text = "我们学习Deep Learning"
    chars, t = [], 0.0
    for ch in text.replace(" ", ""):
        chars.append(Char(ch, t, t + 0.1, 0.9))
        t += 0.1
    deep = text.index(" ") - 1
    chars[deep] = Char(chars[deep].text, chars[deep].start, chars[deep].end, 0.9, after=" ")
    segment = Segment(0, 0.0, t, tuple(chars))
    out = default_punctuator().punctuate_one(segment)
    assert [c.text for c in out.chars] == [c.text for c in segment.chars]
    after = out.chars[deep].after
    assert after == " " or (after and after in MARKS), after  # a mark may take its place
    assert out.punctuated.startswith("我们学习Deep") and "DeepLearning" not in out.punctuated
