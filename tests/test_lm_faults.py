"""Faults found in the language-model code (engine.lm, engine.ngram): damaged lm/ files and
cached domain models, models that write Traditional characters, nested hotwords, cut-short ARPA
files, unusable domain text, a hotword file named `hotwords`, a full disk, and lm.json with a
byte-order mark. Fast and offline."""

from __future__ import annotations

import errno
import gzip
import json
import logging
import zlib
from pathlib import Path

import numpy as np
import pytest
from test_lm import _bonus

import engine.ngram as ngram_module
from engine.lm import (
    MAX_HOTWORD_CHARS,
    BeamDecoder,
    Hotword,
    LmError,
    ModelLM,
    _Biasing,
    add_domain_lm,
    build_model_lm,
    domain_lm,
    read_hotwords,
    text_sentences,
)
from engine.ngram import read_arpa, train_ngram

VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", "医", "一", "生", "个", "人", "好", "看"]
SPECIALS = frozenset({0, 1, 2, 3})
CHARS = VOCAB[5:]
SENTENCES = ["医生看人", "一个好医生", "人看医生", "医生好"] * 20 + [
    f"一个人{'好' * (i % 7)}看{'生' * (i % 5)}" for i in range(200)
]


def _lm_folder(folder: Path, name: str = "char-4gram.arpa.gz") -> Path:
    """A model folder's lm/ holding a 4-gram of SENTENCES; returns the ARPA file."""
    (folder / "lm").mkdir(parents=True, exist_ok=True)
    path = train_ngram(SENTENCES, 4, CHARS).write_arpa(folder / "lm" / name)
    config = {"type": "char-ngram", "file": name}
    (folder / "lm" / "lm.json").write_text(json.dumps(config), encoding="utf-8")
    return path


def _flipped(data: bytes, error: type[Exception] = zlib.error) -> bytes:
    """`data` (gzip) with one byte flipped where decompressing it raises `error` (zlib.error:
    an invalid deflate stream; gzip.BadGzipFile: valid deflate, wrong CRC)."""
    for pos in range(20, len(data) - 8):
        broken = bytearray(data)
        broken[pos] ^= 0xFF
        try:
            gzip.decompress(bytes(broken))
        except error:
            return bytes(broken)
        except Exception:  # another kind of damage: try the next byte
            continue
    raise AssertionError(f"no byte flip gives {error.__name__}")


def frames(vocab: list[str], rows: list[dict[str, float] | str]) -> np.ndarray:
    """Log-softmax frames: a character (0.999), "" (blank), or some outputs' probabilities."""
    ids = {c: i for i, c in enumerate(vocab)}
    out = np.zeros((len(rows), len(vocab)))
    for f, row in enumerate(rows):
        probs = {"": 0.999} if row == "" else ({row: 0.999} if isinstance(row, str) else row)
        out[f] = (1 - sum(probs.values())) / (len(vocab) - len(probs))
        for ch, p in probs.items():
            out[f, 0 if ch == "" else ids[ch]] = p
    return np.log(out).astype(np.float32)


# ---- 1: a damaged lm/ file, lm.json or cached domain model -----------------------------------


@pytest.mark.parametrize("error", [zlib.error, gzip.BadGzipFile])
def test_a_damaged_compressed_lm_file_is_an_lm_error_naming_the_folder(tmp_path, error):
    """It was a raw zlib.error traceback from the CLI. (A flip that leaves the deflate stream
    valid decodes to other numbers: only gzip's CRC at the end of the file tells.)"""
    path = _lm_folder(tmp_path)
    path.write_bytes(_flipped(path.read_bytes(), error))
    with pytest.raises(LmError) as e:
        ModelLM.from_folder(tmp_path)
    assert e.value.code == "lm.bad_folder" and str(tmp_path / "lm") in str(e.value)


def test_a_number_too_large_in_an_arpa_file_is_an_lm_error(tmp_path):
    """10 ** 400 overflowed: an OverflowError traceback."""
    path = _lm_folder(tmp_path, "char-4gram.arpa")
    text = path.read_text(encoding="utf-8")
    first = text.index("\\1-grams:\n") + len("\\1-grams:\n")
    path.write_text(text[:first] + "400" + text[text.index("\t", first) :], encoding="utf-8")
    with pytest.raises(LmError, match="lm"):
        ModelLM.from_folder(tmp_path)
    with pytest.raises(ValueError):
        read_arpa(path)


@pytest.mark.parametrize("content", ["null", "[]", "3", '"char-ngram"'])
def test_lm_json_that_is_not_an_object_is_an_lm_error(tmp_path, content):
    """It was an AttributeError ('NoneType' object has no attribute 'get')."""
    _lm_folder(tmp_path)
    (tmp_path / "lm" / "lm.json").write_text(content, encoding="utf-8")
    with pytest.raises(LmError) as e:
        ModelLM.from_folder(tmp_path)
    assert e.value.code == "lm.bad_folder"


def test_a_damaged_cached_domain_model_is_rebuilt(tmp_path, monkeypatch, caplog):
    """A cached domain model damaged in the middle crashed every later run with zlib.error."""
    monkeypatch.setenv("TINGXIE_LM_CACHE", str(tmp_path / "cache"))
    domain = tmp_path / "domain.txt"
    domain.write_text("\n".join(SENTENCES), encoding="utf-8")
    first = domain_lm(domain, CHARS)
    (cached,) = (tmp_path / "cache").iterdir()
    cached.write_bytes(_flipped(cached.read_bytes()))
    with caplog.at_level(logging.WARNING, logger="tingxie.lm"):
        again = domain_lm(domain, CHARS)
    assert "unreadable: rebuilding it" in caplog.text
    assert again.prob(("医",), "生") == pytest.approx(first.prob(("医",), "生"), rel=1e-5)
    read_arpa(cached)  # written again, whole


# ---- 2: a model that writes Traditional characters ---------------------------------------------

TRADITIONAL = ["<pad>", "<s>", "</s>", "<unk>", "|", *"醫生護士病人藥開這個處方給"]


def test_hotwords_keep_the_traditional_characters_such_a_model_writes(tmp_path):
    """They were converted to Simplified (医生) and then refused as unwritable."""
    path = tmp_path / "terms.txt"
    path.write_text("醫生\n處方\t2\n", encoding="utf-8")
    assert read_hotwords(path, TRADITIONAL[5:]) == (Hotword("醫生"), Hotword("處方", 2.0))
    assert read_hotwords(path) == (Hotword("医生"), Hotword("处方", 2.0))  # no model: Simplified
    beam = BeamDecoder.for_model(TRADITIONAL, 0, SPECIALS, "|", hotwords=path)
    assert beam.hotwords == (Hotword("醫生"), Hotword("處方", 2.0))


def test_domain_text_keeps_the_traditional_characters_such_a_model_writes(tmp_path, monkeypatch):
    """The domain model was built of Simplified text and so knew none of the model's words."""
    monkeypatch.setenv("TINGXIE_LM_CACHE", str(tmp_path / "cache"))
    chars = TRADITIONAL[5:]
    domain = tmp_path / "domain.txt"
    domain.write_text("醫生開處方\n護士給病人藥\n醫生看病人\n" * 5, encoding="utf-8")
    assert domain_lm(domain, chars).prob(("<s>", "醫"), "生") > 0.5
    assert text_sentences([domain], chars)[0] == "醫生開處方"
    # a tuned model's own domain n-gram, and a model folder's LM built from text
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm" / "lm.json").write_text('{"file": "x.arpa"}', encoding="utf-8")
    tuned = read_arpa(add_domain_lm(tmp_path / "lm", ["醫生開處方", "護士給病人藥"], chars))
    assert ("<s>", "醫", "生") in tuned.probs and ("<s>", "医", "生") not in tuned.probs
    (tmp_path / "vocab.json").write_text(
        json.dumps({t: i for i, t in enumerate(TRADITIONAL)}), encoding="utf-8"
    )
    build_model_lm(tmp_path, [domain], order=2)
    assert ModelLM.from_folder(tmp_path).ngram.prob(("醫",), "生") > 0.5


# ---- 3, 4: nested hotwords ---------------------------------------------------------------------

NESTED = ["<pad>", "<s>", "</s>", "<unk>", "|", "高", "糕", "血", "压", "药", "计", "雪", "鸭"]


def test_a_hotword_inside_a_longer_ones_unfinished_match_keeps_its_bonus():
    """With 血压 and 高血压药, 高血压 kept nothing (the match of 高血压药 broke) while 糕血压 kept
    血压's bonus: adding the longer term turned a heard 高血压 into 糕血压."""
    bias = _Biasing([Hotword("血压", 2.0), Hotword("高血压药", 2.0)], default_weight=5.0)
    assert _bonus(bias, "高血压") == _bonus(bias, "糕血压") == _bonus(bias, "血压") == 4.0
    assert _bonus(bias, "高血压药") == 8.0  # each character earns once
    assert _bonus(bias, "高血压人") == 4.0
    lp = frames(NESTED, ["", {"高": 0.5, "糕": 0.4}, "", "血", "", "压", ""])
    for terms in (["血压"], ["血压", "高血压药"], ["高血压药", "血压"]):
        beam = BeamDecoder(NESTED, 0, SPECIALS, "|", hotwords=tuple(Hotword(t, 2.0) for t in terms))
        assert "".join(c.text for c in beam.chars(lp, frame_seconds=0.02)) == "高血压", terms


def test_a_short_hotword_keeps_its_own_weight_when_a_heavier_one_begins_with_it():
    """血压 0.5 beside 血压计 5 kept 血压计's 10 nats: a light nudge became a strong one."""
    for order in (1, -1):
        bias = _Biasing([Hotword("血压", 0.5), Hotword("血压计", 5.0)][::order], 5.0)
        assert _bonus(bias, "血压") == pytest.approx(1.0)
        assert _bonus(bias, "血压人") == pytest.approx(1.0)
        assert _bonus(bias, "血压计") == pytest.approx(15.0)
    lp = frames(NESTED, ["", {"雪": 0.8, "血": 0.1}, "", {"鸭": 0.8, "压": 0.1}, ""])
    terms = (Hotword("血压", 0.5), Hotword("血压计", 5.0))
    beam = BeamDecoder(NESTED, 0, SPECIALS, "|", hotwords=terms)
    assert "".join(c.text for c in beam.chars(lp, frame_seconds=0.02)) == "雪鸭"


def test_with_positive_weights_no_text_keeps_a_negative_hotword_bonus():
    """A give-back only returns what was earned, also where a term's own weight is below the
    running bonus of a longer one (ca 1, caba 3: ...caca gave back 4 it had not earned)."""
    rng = np.random.default_rng(1)
    for _ in range(3000):
        terms = dict.fromkeys(
            "".join(rng.choice(list("abc"), rng.integers(1, 5))) for _ in range(3)
        )
        bias = _Biasing([Hotword(t, float(rng.integers(1, 4))) for t in terms], 1.0)
        text = "".join(rng.choice(list("abc"), rng.integers(1, 9)))
        assert _bonus(bias, text) >= -1e-9, (sorted(terms), text)


# ---- 5: a cut-short plain ARPA file ------------------------------------------------------------


def test_a_cut_short_arpa_file_is_refused_not_read_as_a_smaller_model(tmp_path):
    path = _lm_folder(tmp_path, "char-4gram.arpa")
    text = path.read_text(encoding="utf-8")
    for cut in (text[: text.index("\\3-grams:")], text[: text.rindex("\\end\\")]):
        path.write_text(cut, encoding="utf-8")
        with pytest.raises(ValueError, match="cut short"):
            read_arpa(path)
        with pytest.raises(LmError):
            ModelLM.from_folder(tmp_path)
    # a line lost in the middle: the counts no longer match the header
    lines = text.splitlines(keepends=True)
    middle = lines.index("\\2-grams:\n") + 3
    path.write_text("".join(lines[:middle] + lines[middle + 1 :]), encoding="utf-8")
    with pytest.raises(ValueError, match="2-grams"):
        read_arpa(path)
    path.write_text(text, encoding="utf-8")
    assert ModelLM.from_folder(tmp_path).ngram.order == 4


def test_a_cut_short_compressed_arpa_file_is_a_value_error(tmp_path):
    path = _lm_folder(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError):
        read_arpa(path)


# ---- 6: domain text with no character the model writes -----------------------------------------


def test_a_domain_text_with_no_character_the_model_writes_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("TINGXIE_LM_CACHE", str(tmp_path / "cache"))
    domain = tmp_path / "notes.txt"
    domain.write_text("The patient was seen.\nyi sheng kan bing ren\n", encoding="utf-8")
    with pytest.raises(LmError) as e:
        BeamDecoder.for_model(VOCAB, 0, SPECIALS, "|", domain_text=domain)
    assert e.value.code == "lm.domain_unusable" and str(domain) in str(e.value)
    domain.write_text("The patient saw 医生.\n", encoding="utf-8")  # one usable sentence: fine
    assert BeamDecoder.for_model(VOCAB, 0, SPECIALS, "|", domain_text=domain).lm is not None


# ---- 8: a hotwords file named `hotwords` -------------------------------------------------------


def test_a_hotwords_file_named_hotwords_with_no_usable_term_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("hotwords").write_text("B超\nCT\n", encoding="utf-8")
    with pytest.raises(LmError) as e:
        BeamDecoder.for_model(VOCAB, 0, SPECIALS, "|", hotwords="hotwords")
    assert e.value.code == "lm.hotwords_empty"


def test_running_text_in_a_hotwords_file_is_refused_naming_its_line(tmp_path):
    """Before: every prefix of a term was kept, memory quadratic in its length: a line of
    20 000 characters took 2.5 GB, one of 200 000 had the process killed."""
    path = tmp_path / "hot.txt"
    longest = "医生" * (MAX_HOTWORD_CHARS // 2)
    path.write_text(f"{longest}\n# notes\n{'好' * 20_000}\t2\n", encoding="utf-8")
    with pytest.raises(LmError) as e:
        BeamDecoder.for_model(VOCAB, 0, SPECIALS, "|", hotwords=path)
    message = str(e.value)
    assert e.value.code == "lm.hotword_too_long" and f"{path} line 3:" in message
    assert "20000 characters" in message and "--domain-text" in message and len(message) < 400
    path.write_text(f"{longest}\n", encoding="utf-8")  # the longest a term may be
    assert read_hotwords(path, CHARS) == (Hotword(longest),)


# ---- 9: a full disk while a domain model is cached ---------------------------------------------


def test_a_full_disk_leaves_no_partial_file_in_the_cache(tmp_path, monkeypatch):
    real_open = gzip.open

    def full_disk(path, mode="rb", **kwargs):
        f = real_open(path, mode, **kwargs)
        if "w" in mode:

            def write(_text: str) -> int:
                raise OSError(errno.ENOSPC, "No space left on device")

            f.write = write
        return f

    monkeypatch.setattr(ngram_module.gzip, "open", full_disk)
    monkeypatch.setenv("TINGXIE_LM_CACHE", str(tmp_path / "cache"))
    domain = tmp_path / "domain.txt"
    domain.write_text("\n".join(SENTENCES), encoding="utf-8")
    assert domain_lm(domain, CHARS).prob(("医",), "生") > 0.5  # built, just not cached
    assert list((tmp_path / "cache").iterdir()) == []


# ---- 10: lm.json with a byte-order mark --------------------------------------------------------


def test_lm_json_saved_with_a_byte_order_mark_is_read(tmp_path):
    _lm_folder(tmp_path)
    config = json.dumps({"type": "char-ngram", "file": "char-4gram.arpa.gz", "lm_weight": 0.9})
    (tmp_path / "lm" / "lm.json").write_bytes(b"\xef\xbb\xbf" + config.encode())
    lm = ModelLM.from_folder(tmp_path)
    assert lm is not None and lm.options.lm_weight == 0.9
    add_domain_lm(tmp_path / "lm", ["医生看人"], CHARS)  # a tuning job's export reads it too
    assert ModelLM.from_folder(tmp_path).domain is not None


def test_greedy_decoding_says_it_does_not_use_hotwords_or_domain_text(tiny_model_dir, tmp_path,
                                                                      capsys):  # fmt: skip
    """`--decoder greedy --hotwords terms.txt` transcribed without a word that the terms were
    not used (even a path that does not exist passed unnoticed)."""
    import soundfile as sf

    from engine.cli import main

    sf.write(tmp_path / "a.wav", np.zeros(16_000, np.float32), 16_000)
    code = main(["transcribe", str(tmp_path / "a.wav"), "--model", str(tiny_model_dir),
                 "--decoder", "greedy", "--hotwords", str(tmp_path / "terms.txt"),
                 "--no-punctuation", "--out", str(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0 and "decoder: greedy" in err
    assert "are not used with --decoder greedy" in err


# ---- 11: the beam search writes the word delimiter's space, as greedy decoding does ----------


def test_the_beam_search_spaces_latin_words_as_greedy_decoding_does():
    """ "h i | y o" came out 'hi yo' greedily but 'hiyo' from the beam search (decoder auto with
    an lm/, domain text or hotwords; live finals), so the final replaced the streamed text."""
    from engine.decode import ctc_greedy

    vocab = [*VOCAB, "h", "i", "y", "o"]
    kw = dict(vocab=vocab, blank_id=0, special_ids=SPECIALS, word_delimiter="|")
    lp = frames(vocab, ["h", "i", "", "|", "|", "", "y", "o", "", "医", "|", "生", "i", "|", "好"])
    greedy = ctc_greedy(lp, **kw, frame_seconds=0.02, top_k=0)
    beam = BeamDecoder.for_model(*kw.values(), domain_text=None, hotwords=None)
    chars = beam.chars(lp, frame_seconds=0.02, top_k=0)
    assert "".join(c.text + c.after for c in chars) == "hi yo医生i好"
    assert chars == greedy
