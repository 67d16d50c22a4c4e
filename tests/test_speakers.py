"""Speakers: clustering, turns, segments, exports, the store, renaming, the embedder and the CLI.

The pure stages run on synthetic embeddings and turns; the embedder and `diarize` on real
voices from ../shared/audio (Resemblyzer's encoder is small: a few seconds on a CPU).
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.library.store import EditSession, Store
from engine.punctuation import is_mark
from engine.results import Char, Segment, default_speaker_name, speaker_name
from engine.speakers import (
    SpeakerOptions,
    SpeakersUnavailable,
    Turn,
    assign_speakers,
    cluster,
    speech_windows,
    turns_from_windows,
)
from engine.writers import CueLimits, plan_cues, render, write

# Two voices from different sources (a man, then a woman), both recorded at 16 kHz.
VOICE_A = "funasr_asr_example_zh.wav"
VOICE_B = "fireredtts2_zh_S2.flac"


def chars(text: str, start: float, step: float = 0.3) -> tuple[Char, ...]:
    return tuple(Char(t, start + k * step, start + k * step + 0.2, 0.9) for k, t in enumerate(text))


def segment(i: int, text: str, start: float, speaker: int | None = None) -> Segment:
    cs = chars(text, start)
    return Segment(i, cs[0].start, cs[-1].end, cs, speaker)


# ---- clustering ---------------------------------------------------------------------------


def voices(counts: list[int], spread: float = 0.05, seed: int = 0) -> tuple[np.ndarray, list]:
    """Unit vectors around one random centre per voice (positive, as Resemblyzer's are),
    the voices taking turns in the order given."""
    rng = np.random.default_rng(seed)
    centres = np.abs(rng.normal(size=(len(counts), 64)))
    rows, truth = [], []
    for voice, n in enumerate(counts):
        x = centres[voice] + rng.normal(scale=spread * np.linalg.norm(centres[voice]), size=(n, 64))
        rows.append(x / np.linalg.norm(x, axis=1, keepdims=True))
        truth += [voice] * n
    return np.concatenate(rows), truth


def test_cluster_finds_the_voices_and_numbers_them_by_first_appearance():
    embeddings, truth = voices([6, 4, 5])
    order = [14, 5, 0, 7, 1, 2, 3, 4, 6, 8, 9, 10, 11, 12, 13]  # voice 2 speaks first
    labels = cluster(embeddings[order])
    expected = {2: 0, 0: 1, 1: 2}  # first appearance: voice 2, then 0, then 1
    assert labels.tolist() == [expected[truth[i]] for i in order]


def test_cluster_with_a_given_number_merges_the_nearest_voices():
    embeddings, truth = voices([5, 5, 5])
    labels = cluster(embeddings, SpeakerOptions(speakers=2))
    assert len(set(labels.tolist())) == 2
    # each true voice stays whole
    for v in range(3):
        assert len({labels[i] for i, t in enumerate(truth) if t == v}) == 1


def test_cluster_edge_cases():
    embeddings, _ = voices([3, 3])
    assert cluster(embeddings[:0]).tolist() == []
    assert cluster(embeddings[:1]).tolist() == [0]
    assert cluster(embeddings, SpeakerOptions(speakers=1)).tolist() == [0] * 6
    assert cluster(embeddings[:2], SpeakerOptions(speakers=5)).tolist() == [0, 1]
    # more voices than allowed: the nearest merge
    many, _ = voices([2, 2, 2, 2], spread=0.01)
    assert cluster(many, SpeakerOptions(max_speakers=2)).max() == 1


def test_options_are_checked():
    for bad in ({"speakers": 0}, {"threshold": 0}, {"hop_seconds": 3.0}, {"vad_threshold": 1}):
        with pytest.raises(ValueError):
            SpeakerOptions(**bad)


# ---- windows and turns --------------------------------------------------------------------


def test_speech_windows_cover_each_stretch():
    assert speech_windows([(1.0, 3.0), (5.0, 5.4)], 10.0, 1.6, 0.4) == [
        (1.0, 2.6),
        (1.4, 3.0),
        (4.4, 6.0),
    ]
    assert speech_windows([(0.1, 0.3)], 10.0, 1.6, 0.4) == [(0.0, 1.6)]  # kept inside
    assert speech_windows([(9.7, 9.9)], 10.0, 1.6, 0.4) == [(8.4, 10.0)]
    assert speech_windows([], 10.0, 1.6, 0.4) == []


def test_turns_follow_the_windows_labels():
    regions = [(0.0, 4.0), (5.0, 7.0)]
    windows = speech_windows(regions, 8.0, 1.0, 0.5)
    # first stretch: speaker 0 until 2 s, then 1; second stretch: speaker 0
    labels = [0 if (a + b) / 2 < 2.0 or a >= 5.0 else 1 for a, b in windows]
    turns = turns_from_windows(regions, windows, labels)
    assert [t.speaker for t in turns] == [0, 1, 0]
    assert turns[0].start == 0.0 and turns[-1].end == 7.0
    # the change lies between the centres of the last window of 0 and the first of 1
    assert 1.5 < turns[0].end < 2.0 and turns[1].end == 4.0 and turns[2].start == 5.0


def test_a_turn_shorter_than_the_minimum_joins_its_neighbour():
    regions = [(0.0, 6.0)]
    windows = speech_windows(regions, 6.0, 0.4, 0.2)
    labels = [1 if 3.0 <= (a + b) / 2 < 3.3 else 0 for a, b in windows]  # a 0.3 s blip
    assert [t.speaker for t in turns_from_windows(regions, windows, labels, 0.0)] == [0, 1, 0]
    assert turns_from_windows(regions, windows, labels, 0.6) == [Turn(0.0, 6.0, 0)]


# ---- turns onto segments ------------------------------------------------------------------


def test_segments_take_the_speaker_of_their_turn():
    segs = [segment(0, "你好", 0.0), segment(1, "谢谢你", 3.0)]
    turns = [Turn(0.0, 1.0, 0), Turn(2.9, 4.0, 1)]
    out = assign_speakers(segs, turns)
    assert [s.speaker for s in out] == [0, 1]
    assert [s.text for s in out] == ["你好", "谢谢你"]
    assert assign_speakers(segs, []) == segs  # no turns: unchanged


def test_a_segment_is_split_where_the_speaker_changes():
    # 好的我知道了 at 0.0-1.7 s; the second speaker takes over at 0.9 s (no pause between)
    segs = [segment(4, "好的我知道了", 0.0), segment(5, "嗯", 3.0)]
    turns = [Turn(0.0, 0.85, 0), Turn(0.85, 2.0, 1), Turn(2.9, 3.5, 0)]
    out = assign_speakers(segs, turns)
    assert [(s.id, s.text, s.speaker) for s in out] == [
        (4, "好的我", 0),
        (5, "知道了", 1),
        (6, "嗯", 0),
    ]
    assert out[0].start == 0.0 and out[1].start == out[1].chars[0].start
    assert out[1].end == out[1].chars[-1].end
    # without splitting, most of the characters decide (turn 1's voice, the only one left,
    # is the first speaker)
    whole = assign_speakers(segs, [Turn(0.0, 0.55, 0), Turn(0.55, 2.0, 1)], split=False)
    assert [(s.text, s.speaker) for s in whole] == [("好的我知道了", 0), ("嗯", 0)]


def test_one_character_at_a_turn_edge_does_not_split_a_segment():
    segs = [segment(0, "我们走吧", 0.0)]  # chars at 0.0, 0.3, 0.6, 0.9
    out = assign_speakers(segs, [Turn(0.0, 0.8, 0), Turn(0.8, 1.2, 1)])
    assert [(s.text, s.speaker) for s in out] == [("我们走吧", 0)]


def test_characters_outside_every_turn_take_the_nearest():
    segs = [segment(0, "喂", 10.0), segment(1, "对", 0.0)]
    out = assign_speakers(segs, [Turn(1.0, 2.0, 0), Turn(8.0, 9.0, 1)])
    assert [s.speaker for s in out] == [1, 0]


def test_speakers_are_numbered_without_gaps_in_the_order_they_speak():
    """A voice whose turn holds no transcribed character (a cough, a dropped 嗯) left a gap:
    the transcript read 说话人 1, 说话人 3."""
    segs = [segment(0, "你好医生", 0.0), segment(1, "请坐吧", 3.0)]
    turns = [Turn(0.0, 1.0, 0), Turn(1.5, 2.0, 1), Turn(2.8, 4.0, 2)]
    assert [s.speaker for s in assign_speakers(segs, turns)] == [0, 1]
    later_first = [Turn(0.0, 1.5, 3), Turn(2.8, 4.0, 1)]
    assert [s.speaker for s in assign_speakers(segs, later_first)] == [0, 1]


def test_a_mark_stays_with_the_word_it_ends():
    """Whisper's marks are zero-length characters at the end of their word: a turn edge just
    before that end handed the mark to the next speaker, whose line began with it."""
    text = [("你", 0.0, 0.2), ("好", 0.2, 0.4), ("，", 0.4, 0.4), ("我", 0.42, 0.61),
            ("是", 0.61, 0.8), ("王", 0.8, 1.0), ("医", 1.0, 1.2), ("生", 1.2, 1.4)]  # fmt: skip
    seg = Segment(0, 0.0, 1.4, tuple(Char(t, a, b, 0.9) for t, a, b in text))
    out = assign_speakers([seg], [Turn(0.0, 0.38, 0), Turn(0.38, 1.5, 1)])
    assert [(s.text, s.speaker) for s in out] == [("你好，", 0), ("我是王医生", 1)]


# ---- exports ------------------------------------------------------------------------------

SPOKEN = [
    segment(0, "你好", 0.0, 0),
    segment(1, "请坐", 1.0, 0),
    segment(2, "谢谢", 3.0, 1),
    segment(3, "不客气", 5.0, 0),
]


def test_default_names_and_renames():
    assert default_speaker_name(0) == "说话人 1"
    assert speaker_name(1, {1: "王医生"}) == "王医生"
    assert speaker_name(1, {1: "  "}) == "说话人 2"  # a blank name is no name


def test_txt_names_the_speaker_where_it_changes():
    assert render(SPOKEN, "txt") == "说话人 1：你好\n请坐\n\n说话人 2：谢谢\n\n说话人 1：不客气\n"
    unnamed = [replace(s, speaker=None) for s in SPOKEN]
    assert render(unnamed, "txt") == "你好\n请坐\n谢谢\n不客气\n"  # as before speakers


def test_txt_runs_speakers_given_one_name_together():
    """Naming two speakers alike merges them (a voice split in two): TXT names that person
    once where they start, with no blank line as if the speaker changed."""
    merged = render(SPOKEN, "txt", speakers={0: "王后", 1: "王后"})
    assert merged == "王后：你好\n请坐\n谢谢\n不客气\n"
    assert render(SPOKEN, "txt", speakers={1: "说话人 1"}) == merged.replace("王后", "说话人 1")


def test_subtitles_carry_the_speaker():
    vtt = render(SPOKEN, "vtt")
    assert "\n<v 说话人 1>你好\n" in vtt and "\n<v 说话人 2>谢谢\n" in vtt
    srt = render(SPOKEN, "srt")
    assert "\n说话人 1：你好\n" in srt and "\n说话人 2：谢谢\n" in srt
    assert [c.speaker for c in plan_cues(SPOKEN)] == [0, 0, 1, 0]
    # a name cannot break the voice tag
    assert "<v A&lt;B&gt;>谢谢" in render(SPOKEN, "vtt", speakers={1: "A<B>"})


@pytest.mark.parametrize(
    "name",
    [
        None,  # 说话人 1：beside the first line
        "市场部产品经理王小明老师",  # too long to share it: a line of its own
        "市场部产品经理王小明老师和他的助理们",  # longer than a line: still its own, whole
    ],
)
def test_srt_speaker_names_keep_lines_within_the_limit(name):
    """SRT shows the name as text, so it counts toward the first line's 16 characters: no line
    shown is longer (marks aside), none is empty, and every character is shown once. WebVTT's
    voice tag is not drawn as text: its lines are as without speakers."""
    text = "还有一个就是要跟大家揪证一点，就是我们在看电影的时候，尤其是游戏玩家"
    talk = [Segment(0, 0.0, 5.0, chars(text, 0.0, step=0.12), 0), segment(1, "好的", 9.0, 1)]
    names = {} if name is None else {0: name}
    label, limit = f"{speaker_name(0, names)}：", CueLimits().line_chars
    shown = []
    for block in render(talk, "srt", speakers=names).strip().split("\n\n")[:-1]:
        _, _, *lines = block.split("\n")
        assert lines[0].startswith(label) and all(lines), block
        own_line = lines[0] == label  # a long name, the text below it
        assert own_line == (name is not None) and len(lines) <= 2 + own_line, block
        width = [sum(not is_mark(ch) for ch in line) for line in lines]
        width[0] += len(label) - sum(not is_mark(ch) for ch in label)  # its ：is shown
        assert max(width[own_line:]) <= limit, block
        shown += [lines[0].removeprefix(label), *lines[1:]]
    assert "".join(shown).replace("，", "") == text.replace("，", "")
    vtt = render(talk, "vtt", speakers=names)
    unnamed = render([replace(s, speaker=None) for s in talk], "vtt")
    assert re.sub(r"<v [^>]*>", "", vtt) == unnamed and f"<v {label[:-1]}>还有" in vtt


def test_json_gives_each_segment_its_speaker():
    doc = json.loads(render(SPOKEN, "json", speakers={0: "张三"}))
    assert doc["speakers"] == {"0": "张三", "1": "说话人 2"}
    assert [(s["speaker"], s["speaker_id"]) for s in doc["segments"]] == [
        ("张三", 0),
        ("张三", 0),
        ("说话人 2", 1),
        ("张三", 0),
    ]
    plain = json.loads(render([replace(SPOKEN[0], speaker=None)], "json"))
    assert plain["speakers"] == {} and plain["segments"][0]["speaker"] is None


def test_a_rename_applies_to_every_segment_of_that_speaker_in_every_format(tmp_path):
    names = {0: "李老师"}
    for fmt in ("txt", "srt", "vtt", "json"):
        text = write(SPOKEN, tmp_path / f"t.{fmt}", speakers=names).read_text(encoding="utf-8")
        assert "说话人 1" not in text, fmt
        assert "说话人 2" in text, fmt
    srt = (tmp_path / "t.srt").read_text(encoding="utf-8")
    assert srt.count("李老师：") == 3


# ---- the store ----------------------------------------------------------------------------


def test_store_keeps_speakers_and_their_names(tmp_path):
    with Store(tmp_path / "db" / "tingxie.db") as db:
        tid = db.add_transcript(SPOKEN)
        assert [s.speaker for s in db.original(tid)] == [0, 0, 1, 0]
        assert db.speaker_names(tid) == {}
        session = EditSession(db, tid)
        session.rename_speaker(1, "病人")
        session.rename_speaker(0, "王医生")
        assert session.speaker_names == {0: "王医生", 1: "病人"}
    with Store(tmp_path / "db" / "tingxie.db") as db:  # reopened: the names were saved
        session = EditSession(db, tid)
        assert session.speaker_names == {0: "王医生", 1: "病人"}
        txt = render(session.segments, "txt", speakers=session.speaker_names)
        assert txt.startswith("王医生：你好\n请坐\n\n病人：谢谢\n")
        session.rename_speaker(1, "")  # back to its default name
        assert db.speaker_names(tid) == {0: "王医生"}


def test_transcripts_saved_before_speakers_still_load(tmp_path):
    """A library of the previous schema (no speaker columns) opens, migrates, and its
    transcripts read back without speakers."""
    path = tmp_path / "old.db"
    with Store(path) as db:
        tid = db.add_transcript([replace(s, speaker=None) for s in SPOKEN])
    with sqlite3.connect(path) as raw:  # back to schema 2: no column added after it
        for table in ("segments", "transcripts", "chars"):
            columns = raw.execute(f"SELECT name FROM pragma_table_info('{table}')").fetchall()
            for (column,) in columns:
                if column in ("speaker", "speaker_names", "mark", "preview"):
                    raw.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        raw.execute("PRAGMA user_version=2")
    with Store(path) as db:
        assert [s.text for s in db.segments(tid)] == ["你好", "请坐", "谢谢", "不客气"]
        assert all(s.speaker is None for s in db.segments(tid))
        assert db.speaker_names(tid) == {}


# ---- the embedder and diarize on real voices ----------------------------------------------


def two_voices(shared_audio: Path, gap: float = 0.6) -> tuple[np.ndarray, float]:
    """Voice A, a pause, voice B, a pause, voice A again: (audio, where B starts)."""
    from engine.audio import SAMPLE_RATE, load_audio

    a, b = load_audio(shared_audio / VOICE_A), load_audio(shared_audio / VOICE_B)
    pause = np.zeros(round(gap * SAMPLE_RATE), np.float32)
    half = len(a) // 2
    audio = np.concatenate([a[:half], pause, b, pause, a[half:]])
    return audio, (half + len(pause)) / SAMPLE_RATE


@pytest.fixture(scope="module")
def embedder():
    from engine.speakers import load_embedder

    return load_embedder("resemblyzer")


def test_the_encoder_tells_two_real_voices_apart(shared_audio, embedder):
    from engine.audio import load_audio

    def windows(name: str) -> np.ndarray:
        audio = load_audio(shared_audio / name)
        n = 32_000
        return np.stack([audio[i : i + n] for i in range(8_000, len(audio) - n, 8_000)])

    a, b = embedder.embed(windows(VOICE_A)), embedder.embed(windows(VOICE_B))
    assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    within = min(float(np.mean(a @ a.T)), float(np.mean(b @ b.T)))
    between = float(np.mean(a @ b.T))
    assert within - between > 0.15, (within, between)


def test_the_encoder_matches_resemblyzers_own(shared_audio, embedder, monkeypatch):
    """The network defined in engine.speakers gives Resemblyzer's VoiceEncoder's embedding.
    The resemblyzer package imports webrtcvad, whose release needs pkg_resources (gone from
    current setuptools): a stand-in is given for that import; nothing here uses it."""
    import torch

    from engine.audio import load_audio

    monkeypatch.setitem(sys.modules, "webrtcvad", types.ModuleType("webrtcvad"))
    for name in [m for m in sys.modules if m.startswith("resemblyzer")]:
        monkeypatch.delitem(sys.modules, name)
    load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: load(*a, **{**k, "weights_only": True}))
    from resemblyzer import VoiceEncoder, normalize_volume

    theirs = VoiceEncoder("cpu", verbose=False)
    window = load_audio(shared_audio / VOICE_B)[16_000 : 16_000 + 25_600]  # 1.6 s
    window = normalize_volume(window, -30)  # the level both bring each window to
    expected = theirs.embed_utterance(window, rate=1.6, min_coverage=1)
    assert np.allclose(embedder.embed(window[None, :])[0], expected, atol=1e-4)


def test_diarize_finds_the_two_voices_and_when_they_speak(shared_audio):
    from engine.speakers import diarize

    audio, b_start = two_voices(shared_audio)
    for options in (SpeakerOptions(), SpeakerOptions(speakers=2)):
        turns = diarize(audio, options)
        assert {t.speaker for t in turns} == {0, 1}, turns
        b = [t for t in turns if t.speaker == 1]
        assert abs(b[0].start - b_start) < 0.5 and turns[0].speaker == turns[-1].speaker == 0


def test_missing_packages_say_how_to_install(monkeypatch):
    import importlib.util

    from engine import speakers

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "resemblyzer" else real(name, *a),
    )
    with pytest.raises(SpeakersUnavailable, match=r"pip install -e '\.\[speakers\]'"):
        speakers.ResemblyzerEmbedder()


# ---- the CLI ------------------------------------------------------------------------------


def _transcribe(audio: Path, model: Path, formats: str, speakers: str) -> int:
    """`tingxie-cli transcribe AUDIO --model MODEL --format FORMATS --speakers SPEAKERS`."""
    from engine.cli import main

    args = ["transcribe", str(audio), "--model", str(model), "--format", formats]
    return main([*args, "--speakers", speakers])


def test_cli_speakers_2_on_a_two_voice_file(shared_audio, tiny_model_dir, tmp_path, capsys):
    import soundfile as sf

    audio, _ = two_voices(shared_audio)
    sf.write(tmp_path / "talk.wav", audio, 16_000)
    rc = _transcribe(tmp_path / "talk.wav", tiny_model_dir, "txt,vtt,json", "2")
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "talk.wav: 2 speakers" in err
    doc = json.loads((tmp_path / "talk.json").read_text(encoding="utf-8"))
    assert {s["speaker_id"] for s in doc["segments"]} == {0, 1}
    assert doc["speakers"] == {"0": "说话人 1", "1": "说话人 2"}
    txt = (tmp_path / "talk.txt").read_text(encoding="utf-8")
    assert txt.startswith("说话人 1：") and "说话人 2：" in txt
    assert "<v 说话人 2>" in (tmp_path / "talk.vtt").read_text(encoding="utf-8")


def test_cli_rejects_a_bad_speaker_count(tiny_model_dir, tmp_path, capsys):
    from engine.cli import main

    with pytest.raises(SystemExit):
        main(["transcribe", str(tmp_path / "x.wav"), "--speakers", "some"])
    err = capsys.readouterr().err
    assert "--speakers" in err and "'some': give auto, or the number of speakers" in err


def test_cli_without_the_packages_exits_2_with_the_install_hint(
    tiny_model_dir, tmp_path, capsys, monkeypatch
):
    import soundfile as sf

    from engine import speakers
    from engine.cli import main

    def missing(options=None):
        raise SpeakersUnavailable("speakers.missing", package="resemblyzer", hint="X")

    monkeypatch.setattr(speakers, "ensure_available", missing)
    sf.write(tmp_path / "a.wav", np.zeros(16_000, np.float32), 16_000)
    rc = main(
        [
            "transcribe",
            str(tmp_path / "a.wav"),
            "--model",
            str(tiny_model_dir),
            "--speakers",
            "auto",
        ]
    )
    assert rc == 2
    assert "needs the optional package resemblyzer" in capsys.readouterr().err


def test_cli_keeps_the_transcript_when_the_speaker_step_fails(
    tiny_model_dir, tmp_path, capsys, monkeypatch
):
    """A failure telling speakers apart (memory on a long file) must not throw away the finished
    transcript: it is written without speakers, and the line names the speaker step."""
    import soundfile as sf

    from engine import speakers

    def out_of_memory(audio, options=None, embedder=None):
        raise MemoryError("Unable to allocate 633. MiB for an array")

    monkeypatch.setattr(speakers, "diarize", out_of_memory)
    sf.write(tmp_path / "talk.wav", np.zeros(16_000, np.float32), 16_000)
    rc = _transcribe(tmp_path / "talk.wav", tiny_model_dir, "txt,json", "auto")
    err = capsys.readouterr().err
    assert rc == 0, err
    assert (
        f"{tmp_path / 'talk.wav'}: speakers not told apart (Unable to allocate 633. MiB for an "
        "array); transcript written without them"
    ) in err
    assert "1 of 1 files transcribed" in err
    doc = json.loads((tmp_path / "talk.json").read_text(encoding="utf-8"))
    assert all(s.get("speaker") is None for s in doc["segments"]) and not doc.get("speakers")
    assert (tmp_path / "talk.txt").exists()
