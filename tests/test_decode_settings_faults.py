"""Faults found in decoding and its settings: a language model over another vocabulary or
without <unk>, lm.json weights out of range, a damaged model LM in the app, huge hotword weights,
a hand-edited settings path with a comma, ARPA files with a byte-order mark or a bad number,
and a model folder pasted with quotes or as a file:// URL. Fast and offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.lm import BeamDecoder, BeamOptions, LmError, ModelLM, read_hotwords
from engine.ngram import UNK, read_arpa, train_ngram

VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", "医", "一", "生", "个", "人", "好", "看"]
SPECIALS = frozenset({0, 1, 2, 3})
CHARS = VOCAB[5:]
KW = dict(vocab=VOCAB, blank_id=0, special_ids=SPECIALS, word_delimiter="|")


def frames(rows: list[str]) -> np.ndarray:
    """Log-softmax frames: a character (0.9) or "" (blank)."""
    ids = {c: i for i, c in enumerate(VOCAB)}
    out = np.full((len(rows), len(VOCAB)), 0.1 / (len(VOCAB) - 1))
    for f, row in enumerate(rows):
        out[f, ids[row] if row else 0] = 0.9
    return np.log(out).astype(np.float32)


def text(chars) -> str:
    return "".join(c.text for c in chars)


SPOKEN = frames(["", "医", "", "生", "", "好", "", "人", ""])


def _without_unk(arpa: str) -> str:
    """The ARPA text without its <unk> unigram (SRILM without -unk writes none)."""
    lines = arpa.splitlines()
    n1 = sum(1 for line in lines if line.endswith(f"\t{UNK}") or f"\t{UNK}\t" in line)
    out = [line for line in lines if UNK not in line.split()]
    header = next(i for i, line in enumerate(out) if line.startswith("ngram 1="))
    count = int(out[header].split("=")[1])
    out[header] = f"ngram 1={count - n1}"
    return "\n".join(out) + "\n"


def _model_folder(folder: Path, arpa: str, **settings: object) -> Path:
    """A model folder (vocab.json over VOCAB) whose lm/ holds `arpa` and lm.json `settings`."""
    (folder / "lm").mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(VOCAB)}))
    (folder / "lm" / "c.arpa").write_text(arpa, encoding="utf-8")
    config = {"type": "char-ngram", "file": "c.arpa", **settings}
    (folder / "lm" / "lm.json").write_text(json.dumps(config), encoding="utf-8")
    return folder / "lm" / "c.arpa"


# ---- 1: an LM over another vocabulary, or without <unk> ---------------------------------------


@pytest.mark.parametrize("keep_unk", [True, False])
def test_a_model_lm_over_another_vocabulary_is_refused_naming_its_file(tmp_path, keep_unk):
    """A pinyin ARPA in lm/ was read, and its beam search wrote nothing (no <unk>) or ignored
    every character's LM score."""
    pinyin = train_ngram([["yi", "sheng", "hao"], ["hao", "ren"], ["yi", "ge", "ren"]], 3).arpa()
    path = _model_folder(tmp_path, pinyin if keep_unk else _without_unk(pinyin))
    with pytest.raises(LmError) as e:
        ModelLM.from_folder(tmp_path)
    assert e.value.code == "lm.other_vocabulary"
    assert str(path) in str(e.value) and "0 of the model's 7 characters" in str(e.value)


def test_a_character_an_arpa_without_unk_lacks_gets_a_floor_not_never(tmp_path):
    """生 missing from a character ARPA without <unk> had log10 P of about -228: the beam
    search dropped it (医好人). It now gets the lowest unigram's probability; 6 of the 7
    characters known is coverage enough for the folder's LM."""
    arpa = _without_unk(train_ngram(["医好人", "好人", "一个人", "看人"], 2).arpa())
    _model_folder(tmp_path, arpa)
    lm = ModelLM.from_folder(tmp_path)
    assert lm is not None and "生" not in lm.ngram.vocab
    lowest = min(p for g, p in lm.ngram.probs.items() if len(g) == 1 and p > 1e-90)
    backoff = lm.ngram.backoffs.get(("医",), 1.0)
    assert lm.ngram.prob(("医",), "生") == pytest.approx(backoff * lowest)
    beam = BeamDecoder.for_model(**KW, model_lm=lm)
    assert text(beam.chars(SPOKEN, frame_seconds=0.02)) == "医生好人"


# ---- 2: lm.json settings out of range ---------------------------------------------------------


@pytest.mark.parametrize(
    "setting",
    [
        {"beam_threshold": 0},
        {"beam_threshold": -5},
        {"lm_weight": -3},
        {"char_bonus": -20},
        {"char_bonus": 1e6},
        {"beam_size": 0},
        {"lm_weight": "high"},
    ],
)
def test_lm_json_settings_out_of_range_are_refused_naming_lm_json_and_the_setting(
    tmp_path, setting
):
    """They were accepted: the search then wrote nothing, or other characters than spoken."""
    _model_folder(tmp_path, train_ngram(["医生好", "好人"], 2, CHARS).arpa(), **setting)
    with pytest.raises(LmError) as e:
        ModelLM.from_folder(tmp_path)
    (name,) = setting
    assert e.value.code == "lm.bad_setting"
    assert str(tmp_path / "lm" / "lm.json") in str(e.value) and f"{name}=" in str(e.value)


def test_settings_in_range_are_kept(tmp_path):
    _model_folder(
        tmp_path,
        train_ngram(["医生好", "好人"], 2, CHARS).arpa(),
        lm_weight=0,
        char_bonus=-10,
        beam_threshold=0.5,
        beam_size=1,
    )
    lm = ModelLM.from_folder(tmp_path)
    assert lm is not None and lm.options.char_bonus == -10 and lm.options.beam_size == 1


# ---- 3: a damaged model LM in the app ---------------------------------------------------------


def test_a_damaged_model_lm_keeps_the_users_hotwords_and_says_what_to_do_in_the_app(
    qtbot, tiny_with_lm, tmp_path
):
    """The app fell back to greedy decoding, which dropped the user's good hotword list too,
    and told the CLI's advice (--decoder greedy)."""
    from app.decoding import failure_text
    from app.i18n import set_language
    from app.worker import Decoding, EngineWorker
    from engine.model import LoadOptions, load_model
    from engine.transcribe import TranscribeOptions, Transcriber

    arpa = next((tiny_with_lm / "lm").glob("*.arpa.gz"))
    arpa.write_bytes(arpa.read_bytes()[:200])  # a copy cut short
    vocab = json.loads((tiny_with_lm / "vocab.json").read_text("utf-8"))
    chars = [t for t in vocab if len(t) == 1 and t != "|"]
    hot = tmp_path / "hot.txt"
    hot.write_text(chars[5] + chars[6] + "\n", "utf-8")
    worker = EngineWorker(None)
    transcriber = Transcriber(load_model(tiny_with_lm, LoadOptions(device="cpu", precision="fp32")))
    worker._transcriber = transcriber
    told: list = []
    worker.decoding_failed.connect(lambda part, e: told.append((part, e)))
    worker._decoding = Decoding("auto", "", str(hot))
    usable = worker._usable_decoding()
    assert usable is not None and usable["decoder"] == "auto" and usable["hotwords"] == str(hot)
    assert usable["model_lm"] is False
    beam = transcriber.beam_decoder(TranscribeOptions(**usable))
    assert beam is not None and beam.lm is None and len(beam.hotwords) == 1
    ((part, error),) = told
    assert part == "model_lm" and error.code == "lm.bad_folder"
    try:
        for language, menu in (("en", "Model → Language model"), ("zh", "模型 → 语言模型")):
            set_language(language)
            message = failure_text(part, error)
            assert "--decoder" not in message and menu in message
            assert str(tiny_with_lm / "lm") in message
    finally:
        set_language("zh")
    # without hotwords or domain text there is nothing left to search with: greedy
    worker._decoding = Decoding("auto", "", "")
    usable = worker._usable_decoding()
    assert usable is not None and transcriber.beam_decoder(TranscribeOptions(**usable)) is None


# ---- 4: huge hotword weights ------------------------------------------------------------------


@pytest.mark.parametrize("weight", ["1e100", "1e308", "-101"])
def test_a_hotword_weight_beyond_the_bound_is_refused_naming_the_file_and_line(tmp_path, weight):
    """1e100 wrote other characters than spoken, 1e308 nothing at all (inf, then NaN)."""
    path = tmp_path / "hot.txt"
    path.write_text(f"# terms\n医生\t{weight}\n", encoding="utf-8")
    with pytest.raises(LmError) as e:
        read_hotwords(path, CHARS)
    assert e.value.code == "lm.hotword_weight_range"
    assert str(path) in str(e.value) and "line 2" in str(e.value) and "100" in str(e.value)
    with pytest.raises(ValueError, match="hotword_weight"):
        BeamOptions(hotword_weight=float(weight))


def test_a_hotword_weight_at_the_bound_is_used(tmp_path):
    path = tmp_path / "hot.txt"
    path.write_text("医生\t100\n", encoding="utf-8")
    assert read_hotwords(path, CHARS)[0].weight == 100.0
    assert BeamOptions(hotword_weight=-100).hotword_weight == -100


# ---- 5: a hand-edited settings path with a comma ----------------------------------------------


def test_a_hand_edited_path_with_a_comma_reads_back_whole(qtbot, tmp_path):
    """QSettings splits an unquoted value at its commas: the path read as "['a', 'b']"."""
    from app.settings import load, open_settings

    ini = tmp_path / "h.ini"
    ini.write_text(
        "[General]\nmodel=/home/u/models/zh, v2\nhotwords=/home/u/a,b.txt\n", encoding="utf-8"
    )
    prefs = load(open_settings(ini))
    assert prefs.model == "/home/u/models/zh, v2" and prefs.hotwords == "/home/u/a, b.txt"


# ---- 6: ARPA files with a byte-order mark or a bad number -------------------------------------


def test_an_arpa_file_with_a_byte_order_mark_reads(tmp_path):
    """Notepad's "UTF-8 with BOM" was refused as "not an ARPA file"."""
    path = tmp_path / "c.arpa"
    path.write_bytes(("\ufeff" + train_ngram(["医生好", "好人"], 2, CHARS).arpa()).encode())
    assert read_arpa(path).order == 2


def test_a_bad_number_in_an_arpa_file_names_the_file_and_line(tmp_path):
    """It said only "could not convert string to float: 'abc0.58'"."""
    arpa = train_ngram(["医生好", "好人"], 2, CHARS).arpa()
    lines = arpa.splitlines()
    n = lines.index("\\1-grams:") + 2  # the first unigram's line (1-based)
    word = "abc" + lines[n - 1].split()[0].lstrip("-")
    lines[n - 1] = word + lines[n - 1][lines[n - 1].index("\t") :]
    path = tmp_path / "c.arpa"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError) as e:
        read_arpa(path)
    assert str(e.value) == f"{path} line {n}: {word!r} is not a number"


# ---- 7: a model folder pasted with quotes or as a file:// URL ---------------------------------


def test_the_model_dialog_reads_a_quoted_path_and_a_file_url(qtbot, tmp_path):
    """Explorer's "Copy as path" quotes, and a file manager's URL, were kept: "does not
    exist"."""
    from PySide6.QtCore import QUrl

    from app.modeldialog import ModelDialog

    folder = tmp_path / "my model"
    folder.mkdir()
    url = QUrl.fromLocalFile(str(folder)).toString()
    for typed in (f'"{folder}"', f"'{folder}'", f" {url} ", url.replace(" ", "%20")):
        dialog = ModelDialog(typed)
        qtbot.addWidget(dialog)
        assert dialog.source() == str(folder), typed
    dialog = ModelDialog("jonatasgrosman/wav2vec2-large-xlsr-53-chinese-zh-cn")
    qtbot.addWidget(dialog)
    assert dialog.source() == "jonatasgrosman/wav2vec2-large-xlsr-53-chinese-zh-cn"
