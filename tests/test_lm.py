"""Language-model decoding: the n-gram's math, the beam search on built log-probabilities (a
homophone fixed by context, hotwords), the domain-text cache, and the model folder's lm/ used by
default. Fast and offline; the measured cuts on synthesized speech are bench/bench_lm.py's."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.decode import ctc_greedy
from engine.lm import (
    DOMAIN_FILE,
    EVIDENCE,
    BeamDecoder,
    BeamOptions,
    Hotword,
    LmError,
    ModelLM,
    _Biasing,
    _Path,
    add_domain_lm,
    beam_agreement,
    build_model_lm,
    describe_decoder,
    domain_lm,
    neighbour_min,
    read_hotwords,
    searched_frames,
)
from engine.ngram import BOS, EOS, Interpolated, read_arpa, split_sentences, train_ngram

VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", "医", "一", "生", "个", "人", "好", "看"]
BLANK, DELIM = 0, 4
SPECIALS = frozenset({0, 1, 2, 3})
CHARS = VOCAB[5:]
ID = {c: i for i, c in enumerate(VOCAB)}
KW = dict(vocab=VOCAB, blank_id=BLANK, special_ids=SPECIALS, word_delimiter="|")


def frames(rows: list[dict[str, float] | str]) -> np.ndarray:
    """Log-softmax frames: a character (its frame peaks at 0.9), "" (blank), or a dict of
    probabilities for some outputs (the rest share what is left)."""
    v = len(VOCAB)
    out = np.zeros((len(rows), v))
    for f, row in enumerate(rows):
        probs = {"": 0.9} if row == "" else ({row: 0.9} if isinstance(row, str) else row)
        rest = (1 - sum(probs.values())) / (v - len(probs))
        out[f] = rest
        for ch, p in probs.items():
            out[f, BLANK if ch == "" else ID[ch]] = p
    return np.log(out).astype(np.float32)


def text(chars) -> str:
    return "".join(c.text for c in chars)


# ---- the n-gram ------------------------------------------------------------------------------

SENTENCES = ["医生好", "医生看人", "好医生", "一个人", "一个好人", "人好", "医生看一个人"]


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_probabilities_sum_to_one_in_every_context(order):
    """Seen, unseen and sentence-start contexts; characters never seen get a share too."""
    lm = train_ngram(SENTENCES, order, CHARS)
    outcomes = [*CHARS, EOS]
    for context in [(BOS,), ("医",), ("医", "生"), ("一", "个", "好"), ("看", "看"), ()]:
        total = sum(lm.prob(context, w) for w in outcomes)
        assert total == pytest.approx(1.0, abs=1e-9), context


def test_context_raises_what_follows_it_and_unseen_characters_keep_a_share():
    lm = train_ngram(SENTENCES, 3, [*CHARS, "病"])
    assert lm.prob(("医",), "生") > 0.5
    assert lm.prob(("一",), "生") < lm.prob(("医",), "生") / 5
    assert 0 < lm.prob(("医",), "病") < lm.prob(("医",), "生")
    assert math.isclose(lm.logprob(("医",), "生"), math.log(lm.prob(("医",), "生")))


def test_arpa_round_trip_keeps_the_probabilities(tmp_path):
    lm = train_ngram(SENTENCES, 3, CHARS)
    for name in ("lm.arpa", "lm.arpa.gz"):
        back = read_arpa(lm.write_arpa(tmp_path / name))
        assert back.order == 3
        for context in [(BOS,), ("医", "生"), ("看", "看")]:
            for w in [*CHARS, EOS]:
                assert back.prob(context, w) == pytest.approx(lm.prob(context, w), rel=1e-5)
    head = (tmp_path / "lm.arpa").read_text(encoding="utf-8").splitlines()[:4]
    assert head[0] == "\\data\\" and head[1].startswith("ngram 1=")


def test_interpolation_mixes_linearly_and_stays_normalized():
    a = train_ngram(SENTENCES, 3, CHARS)
    b = train_ngram(["一个一个", "一生"], 3, CHARS)
    mix = Interpolated([(a, 3), (b, 1)])
    for context in [(BOS,), ("一",)]:
        total = sum(math.exp(mix.logprob(context, w)) for w in [*CHARS, EOS])
        assert total == pytest.approx(1.0, abs=1e-9)
        expected = 0.75 * a.prob(context, "生") + 0.25 * b.prob(context, "生")
        assert math.exp(mix.logprob(context, "生")) == pytest.approx(expected)
    with pytest.raises(ValueError):
        Interpolated([(a, 0)])


def test_running_text_is_split_into_normalized_sentences():
    assert split_sentences("医生好。一個人！\n好人，看看？  ") == ["医生好", "一个人", "好人看看"]


# ---- beam search -----------------------------------------------------------------------------

# 医 and 一 sound alike (yi): the acoustic model leans to 一 on the first character.
HOMOPHONE = ["", {"一": 0.5, "医": 0.4}, "", "生", "生", "", "好"]


def test_the_language_model_fixes_a_homophone_greedy_gets_wrong():
    lp = frames(HOMOPHONE)
    assert text(ctc_greedy(lp, **KW, frame_seconds=0.02)) == "一生好"
    lm = train_ngram(SENTENCES, 3, CHARS)
    beam = BeamDecoder(**KW, lm=lm, options=BeamOptions(lm_weight=1.0, char_bonus=0.0))
    chars = beam.chars(lp, frame_seconds=0.02)
    assert text(chars) == "医生好"
    # times from the beam's path; confidence from the posteriors there; the other reading
    # among the alternatives (the beam that wrote 一 first)
    first = chars[0]
    assert (first.start, first.end) == (0.02, 0.04)
    assert first.confidence < chars[1].confidence
    assert first.alternatives[0].text == "一"
    assert first.alternatives[0].prob == pytest.approx(0.5, abs=1e-3)


def test_the_evidence_shows_where_the_language_model_overrode_the_acoustics():
    """What the calibration's beam map reads: the LM chose 医 over the acoustically likelier
    一, so 医's own posterior sits below its frames' best, a beam disagrees on it, and its
    neighbour inherits the doubt."""
    lp = frames(HOMOPHONE)
    lm = train_ngram(SENTENCES, 3, CHARS)
    # lm_weight 0.5: the beam that wrote 一 survives (at 1.0 it is pruned, and all agree)
    beam = BeamDecoder(**KW, lm=lm, options=BeamOptions(lm_weight=0.5, char_bonus=0.0))
    paths = beam.paths(lp)
    chars = beam.chars(lp, frame_seconds=0.02, paths=paths)
    assert text(chars) == "医生好"
    ev = dict(zip(EVIDENCE, beam.evidence(lp, paths).T, strict=True))
    shown = np.log([c.confidence for c in chars])  # the measure: max_prob, from 一's 0.5
    assert ev["log_confidence"] == pytest.approx(shown, abs=1e-3)
    assert ev["log_chosen"][0] == pytest.approx(np.log(0.4), abs=1e-3)  # 医's own 0.4
    assert ev["log_chosen"][2] == pytest.approx(np.log(0.9), abs=1e-3)
    assert 0.5 < ev["beam_agreement"][0] < ev["beam_agreement"][1] == pytest.approx(1.0)
    assert ev["lm_logprob"][1] > ev["lm_logprob"][0]  # 生 after 医 is what the text says
    assert ev["neighbour_log_confidence"][1] == pytest.approx(shown[0], abs=1e-3)
    assert beam.evidence(frames(["", ""]), beam.paths(frames(["", ""]))).shape == (0, 7)


def test_beam_agreement_weighs_each_beam_by_its_probability():
    def path(ids, score):
        n = len(ids)
        runs = np.arange(0, 2 * n, 2), np.arange(1, 2 * n + 1, 2)
        return _Path(np.array(ids), *runs, score, np.zeros(max(n - 1, 0), dtype=bool))

    best, other = path([5, 7], 0.0), path([5, 9], -np.log(3.0))  # weights 3/4 and 1/4
    assert beam_agreement([best, other]) == pytest.approx([1.0, 0.75])
    assert beam_agreement([best]) == pytest.approx([1.0, 1.0])
    assert beam_agreement([best, path([], 0.0)]) == pytest.approx([0.5, 0.5])
    assert neighbour_min(np.array([3.0, 1.0, 2.0, 5.0])) == pytest.approx([1.0, 2.0, 1.0, 2.0])
    assert neighbour_min(np.array([4.0])) == pytest.approx([4.0])


def test_without_a_language_model_the_beam_equals_greedy_decoding():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(60, len(VOCAB))) * 3
    logits[:, BLANK] += 2
    lp = (logits - np.log(np.exp(logits).sum(1, keepdims=True))).astype(np.float32)
    greedy = ctc_greedy(lp, **KW, frame_seconds=0.02, top_k=0)
    beam = BeamDecoder(**KW, options=BeamOptions(lm_weight=0, char_bonus=0))
    assert beam.chars(lp, frame_seconds=0.02, top_k=0) == greedy
    assert len(greedy) > 5


def test_blank_certain_runs_are_searched_as_one_frame():
    sure, unsure = np.log([0.9995, 0.0005]), np.log([0.5, 0.5])
    lp = np.zeros((9, 2), np.float32)
    lp[:, 0] = [sure[0], sure[0], sure[0], unsure[0], sure[0], unsure[0], sure[0], sure[0], 0]
    assert searched_frames(lp, 0, 0.999).tolist() == [0, 3, 4, 5, 6]
    assert searched_frames(lp, 0, 1.0).tolist() == list(range(9))
    assert searched_frames(lp[:0], 0, 0.999).tolist() == []


def test_skipping_blank_certain_frames_keeps_the_search_and_its_times():
    """Silences around and between the homophone's characters: the same text, times and
    confidences as searching every frame, and a character repeated across a silence stays
    two characters."""
    silence = [{"": 0.9999}] * 6
    rows = [*silence, *HOMOPHONE, *silence, "好", *silence, "好", *silence]
    lp = frames(rows)
    lm = train_ngram(SENTENCES, 3, CHARS)
    options = BeamOptions(lm_weight=1.0, char_bonus=0.0)
    skipping = BeamDecoder(**KW, lm=lm, options=options)
    every = BeamDecoder(**KW, lm=lm, options=replace(options, blank_skip=1.0))
    assert len(searched_frames(lp, BLANK, options.blank_skip)) < len(lp) - 15
    chars = skipping.chars(lp, frame_seconds=0.02)
    assert text(chars) == "医生好好好"
    assert chars == every.chars(lp, frame_seconds=0.02)


def test_hotwords_change_the_output_and_partial_matches_earn_nothing():
    lp = frames(HOMOPHONE)
    plain = BeamDecoder(**KW, options=BeamOptions(lm_weight=0, char_bonus=0))
    assert text(plain.chars(lp, frame_seconds=0.02)) == "一生好"
    hot = BeamDecoder(**KW, options=BeamOptions(lm_weight=0, char_bonus=0),
                      hotwords=(Hotword("医生"),))  # fmt: skip
    assert text(hot.chars(lp, frame_seconds=0.02)) == "医生好"
    # a hotword that does not fit the audio changes nothing
    other = BeamDecoder(**KW, options=BeamOptions(lm_weight=0, char_bonus=0),
                        hotwords=(Hotword("医看人", 2.0),))  # fmt: skip
    assert text(other.chars(lp, frame_seconds=0.02)) == "一生好"


def test_biasing_gives_back_a_broken_match_and_keeps_a_completed_one():
    bias = _Biasing([Hotword("医生", 2.0), Hotword("好人")], default_weight=1.0)
    state, bonus = bias.step(bias.START, "医")
    assert (state, bonus) == (("医", ""), 2.0)
    assert bias.step(state, "好") == (("好", ""), -2.0 + 1.0)  # 医 broke, 好 starts 好人
    done, bonus = bias.step(("医", ""), "生")
    assert (done, bonus) == (("", "医生"), 2.0)  # completed: 4 in all, kept
    assert bias.step(bias.START, "看") == (bias.START, 0.0)
    # the same term again, back to back, earns nothing (no writing a term twice over one)
    again, bonus = bias.step(done, "医")
    assert (again, bonus) == (("医", "医生"), 2.0)
    assert bias.step(again, "生") == (("", "医生"), -2.0)
    # after another character in between, it earns again
    between, _ = bias.step(done, "看")
    assert between == bias.START
    assert bias.step(bias.step(between, "医")[0], "生") == (("", "医生"), 2.0)


def _bonus(bias: _Biasing, text: str) -> float:
    """What `text`, decoded to its end, earns from the hotwords."""
    state, total = bias.START, 0.0
    for char in text:
        state, bonus = bias.step(state, char)
        total += bonus
    return total + bias.end(state)


@pytest.mark.parametrize("order", [1, -1])
def test_a_hotword_that_begins_a_longer_one_leaves_the_longer_ones_bonus_whole(order):
    bias = _Biasing([Hotword("阿司"), Hotword("阿司匹林")][::order], default_weight=5.0)
    assert _bonus(bias, "阿司匹林") == 20.0  # as with 阿司匹林 alone, not 10
    assert _bonus(bias, "阿司") == 10.0
    assert _bonus(bias, "阿司匹") == _bonus(bias, "阿司匹看") == 10.0  # 阿司 completed: kept
    assert _bonus(bias, "看阿司匹林看") == 20.0
    # back to back, the second earns nothing, also when the term begins a longer one
    assert _bonus(bias, "阿司阿司") == 10.0
    assert _bonus(bias, "阿司匹林阿司匹林") == 20.0
    # in the search: the longer term is written as it is with it alone
    lp = frames(["医", "", "生", "", {"看": 0.5, "好": 0.3}, ""])
    options = BeamOptions(hotword_weight=3.0)
    for terms in (["医生好"], ["医生", "医生好"], ["医生好", "医生"]):
        beam = BeamDecoder(**KW, options=options, hotwords=tuple(map(Hotword, terms)))
        assert text(beam.chars(lp, frame_seconds=0.02)) == "医生好", terms


def test_hotwords_the_model_cannot_write_are_named_and_not_counted(tmp_path, caplog):
    path = tmp_path / "terms.txt"
    path.write_text("医生\nB超\n好人X光\n", encoding="utf-8")  # the model has no Latin letters
    beam = BeamDecoder.for_model(VOCAB, BLANK, SPECIALS, "|", hotwords=path)
    assert beam.hotwords == (Hotword("医生"),)
    assert "1 hotwords" in describe_decoder(beam)
    assert f"{path}: hotwords not used" in caplog.text
    assert "b超 (b超), 好人x光 (x光)" in caplog.text  # normalized as transcripts are


@pytest.mark.parametrize("text", ["，。！？\n", "B超\nCT\n", "# only a comment\n", ""])
def test_a_hotwords_file_with_no_usable_term_is_an_error_naming_it(tmp_path, text):
    """It was shown as in use (Hotwords: terms.txt) and changed nothing, with no message."""
    path = tmp_path / "terms.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LmError) as e:
        BeamDecoder.for_model(VOCAB, BLANK, SPECIALS, "|", hotwords=path)
    assert e.value.code == "lm.hotwords_empty" and str(path) in str(e.value)
    assert BeamDecoder.for_model(VOCAB, BLANK, SPECIALS, "|").hotwords == ()  # none asked: fine


def test_hotword_files_take_optional_weights(tmp_path):
    path = tmp_path / "terms.txt"
    path.write_text("# 科室\n血压\n心电图\t2.5\n 急诊科\t4 \n\n血压\t1\n", encoding="utf-8")
    assert read_hotwords(path) == (
        Hotword("血压", 1.0),
        Hotword("心电图", 2.5),
        Hotword("急诊科", 4.0),
    )
    path.write_text("血压\tnan\n", encoding="utf-8")
    with pytest.raises(LmError, match="line 1"):
        read_hotwords(path)
    with pytest.raises(LmError):
        read_hotwords(tmp_path / "missing.txt")


# ---- domain text -----------------------------------------------------------------------------


def test_domain_text_is_built_once_per_content(tmp_path, monkeypatch):
    import engine.lm as lm_module

    monkeypatch.setenv("TINGXIE_LM_CACHE", str(tmp_path / "cache"))
    domain = tmp_path / "domain.txt"
    domain.write_text("医生看人。医生好！\n一个医生\n", encoding="utf-8")
    first = domain_lm(domain, CHARS)
    cached = list((tmp_path / "cache").iterdir())
    assert len(cached) == 1 and cached[0].name.endswith(".arpa.gz")
    assert first.prob(("医",), "生") > 0.5

    def no_training(*args, **kwargs):
        raise AssertionError("built again although the text is unchanged")

    monkeypatch.setattr(lm_module, "_train", no_training)
    again = domain_lm(domain, CHARS)
    assert again.prob(("医",), "生") == pytest.approx(first.prob(("医",), "生"), rel=1e-5)
    monkeypatch.undo()
    monkeypatch.setenv("TINGXIE_LM_CACHE", str(tmp_path / "cache"))
    domain.write_text("一个人\n", encoding="utf-8")
    domain_lm(domain, CHARS)
    assert len(list((tmp_path / "cache").iterdir())) == 2
    domain.write_text("，。\n", encoding="utf-8")
    with pytest.raises(LmError, match="no sentences"):
        domain_lm(domain, CHARS)


def test_domain_text_mixed_into_the_model_lm_changes_the_reading(tmp_path, monkeypatch):
    """The general model knows 一生 (a lifetime), the domain text 医生 (a doctor)."""
    monkeypatch.setenv("TINGXIE_LM_CACHE", str(tmp_path / "cache"))
    general = ModelLM(
        train_ngram(["一生好", "一生", "一个人"], 3, CHARS), BeamOptions(lm_weight=1.0), tmp_path
    )
    lp = frames(["", {"一": 0.45, "医": 0.45}, "", "生", "", "好"])
    beam = BeamDecoder.for_model(**KW, model_lm=general)
    assert text(beam.chars(lp, frame_seconds=0.02)) == "一生好"
    domain = tmp_path / "ward.txt"
    domain.write_text("医生好\n医生看人\n好医生\n", encoding="utf-8")
    mixed = BeamDecoder.for_model(**KW, model_lm=general, domain_text=domain)
    assert text(mixed.chars(lp, frame_seconds=0.02)) == "医生好"


def test_with_domain_text_a_homophone_the_acoustics_barely_offered_can_be_written(
    tmp_path, monkeypatch
):
    """The frames hear 一 (医 not at all): the domain text alone cannot make 医生 of it, but
    with homophone search (on with domain text) 医 is offered at 一's score less the penalty,
    and the domain's 医生 wins. What the calibration's beam map reads of it is the frames' own
    posterior of 医: not heard."""
    monkeypatch.setenv("TINGXIE_LM_CACHE", str(tmp_path / "cache"))
    general = ModelLM(
        train_ngram(["一个人", "一个好人", "好人"], 3, CHARS), BeamOptions(lm_weight=1.0), tmp_path
    )
    lp = frames(["", "一", "", "生", "", "好"])
    lp[1, ID["医"]] = -20.0  # not among what the frame heard
    domain = tmp_path / "ward.txt"
    domain.write_text("医生好\n医生看人\n好医生\n", encoding="utf-8")
    plain = BeamDecoder.for_model(**KW, model_lm=general, domain_text=domain, homophones=False)
    assert text(plain.chars(lp, frame_seconds=0.02)) == "一生好"
    searched = BeamDecoder.for_model(**KW, model_lm=general, domain_text=domain)
    assert searched.homophones and "homophones" in describe_decoder(searched)
    paths = searched.paths(lp)
    assert text(searched.chars(lp, frame_seconds=0.02, paths=paths)) == "医生好"
    log_chosen = searched.evidence(lp, paths)[:, EVIDENCE.index("log_chosen")]
    assert log_chosen[0] < -9 and log_chosen[1] > -0.2  # 医: not heard (clipped at 1e-4)
    without_domain = BeamDecoder.for_model(**KW, model_lm=general)
    assert not without_domain.homophones  # off unless the user gives domain text


def test_a_tuned_models_own_domain_lm_is_read_from_its_folder_and_mixed_in(tmp_path):
    """What a tuning job leaves in the tuned model's lm/ (engine.tune.export.save_merged):
    the general n-gram knows 一生, the tuning transcripts 医生; the folder's LM reads 医生 with
    no domain text given, and repeated transcripts count once. Without the domain part (or
    with tuned_domain_weight 0) the same frames read 一生; the user's domain-text share
    (domain_weight) is a setting of its own."""
    (tmp_path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(VOCAB)}))
    corpus = tmp_path / "general.txt"
    corpus.write_text("一生好\n一生\n一个人\n", encoding="utf-8")
    options = BeamOptions(lm_weight=1.0, tuned_domain_weight=0.5)
    build_model_lm(tmp_path, [corpus], order=3, options=options)
    lp = frames(["", {"一": 0.45, "医": 0.45}, "", "生", "", "好"])
    general = ModelLM.from_folder(tmp_path)
    assert general is not None and general.domain is None
    assert text(BeamDecoder.for_model(**KW, model_lm=general).chars(lp, frame_seconds=0.02)) == (
        "一生好"
    )
    assert add_domain_lm(tmp_path / "lm", ["，。"], CHARS) is None  # nothing to learn from
    written = add_domain_lm(tmp_path / "lm", ["医生好", "医生看人", "好医生"] * 3, CHARS)
    assert written is not None and written.is_file()
    config = json.loads((tmp_path / "lm" / "lm.json").read_text(encoding="utf-8"))
    assert config["domain"]["sentences"] == 3 and config["lm_weight"] == 1.0
    tuned = ModelLM.from_folder(tmp_path)
    assert tuned is not None and tuned.domain is not None
    beam = BeamDecoder.for_model(**KW, model_lm=tuned)
    assert text(beam.chars(lp, frame_seconds=0.02)) == "医生好"
    assert "mixed with a domain model" in describe_decoder(beam)
    for share, expected in (("domain_weight", "医生好"), ("tuned_domain_weight", "一生好")):
        zero = replace(tuned.options, **{share: 0.0})
        beam = BeamDecoder.for_model(**KW, model_lm=tuned, options=zero)
        assert text(beam.chars(lp, frame_seconds=0.02)) == expected, share


# ---- model folders ---------------------------------------------------------------------------


def test_a_model_folder_lm_is_written_and_read_back(tmp_path):
    (tmp_path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(VOCAB)}))
    corpus = tmp_path / "train.txt"
    corpus.write_text("\n".join(SENTENCES), encoding="utf-8")
    options = BeamOptions(lm_weight=0.7, beam_size_token=24, tuned_domain_weight=0.1)
    written = build_model_lm(tmp_path, [corpus], order=3, options=options)
    config = json.loads(written.read_text(encoding="utf-8"))
    assert config["lm_weight"] == 0.7 and config["sentences"] == len(SENTENCES)
    lm = ModelLM.from_folder(tmp_path)
    assert lm is not None and lm.ngram.order == 3 and lm.options == options
    assert set(CHARS) <= lm.ngram.vocab
    # a tuned model's domain n-gram belongs to the LM it had; a rebuilt one drops it
    add_domain_lm(tmp_path / "lm", ["医生看人"], CHARS)
    assert (tmp_path / "lm" / DOMAIN_FILE).is_file()
    build_model_lm(tmp_path, [corpus], order=3, options=options)
    assert not (tmp_path / "lm" / DOMAIN_FILE).exists()
    assert ModelLM.from_folder(tmp_path).options == options
    assert ModelLM.from_folder(tmp_path / "nowhere") is None
    (tmp_path / "lm" / "lm.json").write_text("{", encoding="utf-8")
    with pytest.raises(LmError):
        ModelLM.from_folder(tmp_path)


def _transcribe(transcriber, audio, **options):
    from engine.results import Segment
    from engine.transcribe import TranscribeOptions

    items, _ = transcriber.transcribe(audio, TranscribeOptions(**options))
    return [c for s in items if isinstance(s, Segment) for c in s.chars]


def test_a_folder_with_lm_decodes_with_it_by_default_and_greedy_turns_it_off(tiny_with_lm):
    from engine.model import LoadOptions, load_model
    from engine.transcribe import Transcriber

    t = Transcriber(load_model(tiny_with_lm, LoadOptions(device="cpu", precision="fp32")))
    assert t.model_lm is not None
    assert t.beam_decoder() is not None
    from engine.transcribe import TranscribeOptions

    assert t.beam_decoder(TranscribeOptions(decoder="greedy")) is None
    audio = np.random.default_rng(1).normal(scale=0.1, size=16000 * 3).astype(np.float32)
    greedy = _transcribe(t, audio, decoder="greedy")
    (lp,) = t.log_probs([audio])
    m = t.model
    expected = ctc_greedy(
        lp,
        vocab=m.vocab,
        blank_id=m.blank_id,
        special_ids=m.special_ids,
        word_delimiter=m.word_delimiter,
        frame_seconds=t.frame_seconds,
    )
    assert greedy == expected  # exactly the old greedy output
    beam = t.beam_decoder()
    searched = beam.chars(lp, frame_seconds=t.frame_seconds)
    assert _transcribe(t, audio) == searched
    assert all(0 <= c.confidence <= 1 and c.end > c.start for c in searched)


def test_a_folder_without_lm_stays_greedy(tiny_model_dir):
    from engine.model import LoadOptions, load_model
    from engine.transcribe import TranscribeOptions, Transcriber

    t = Transcriber(load_model(tiny_model_dir, LoadOptions(device="cpu", precision="fp32")))
    assert t.model_lm is None and t.beam_decoder() is None
    assert t.beam_decoder(TranscribeOptions(decoder="beam")) is not None
    with pytest.raises(ValueError, match="decoder"):
        TranscribeOptions(decoder="fast")


def test_long_input_is_cut_at_pauses_for_the_beam_search():
    """The file transcriber decodes up to the middle of each pause; pieces decode as a whole."""
    from engine.transcribe import _BEAM_PAUSE_FRAMES, _FrameDecoder

    class Fake:
        silent = np.array([True, True, True, True, True] + [False] * (len(VOCAB) - 5))

    decoder = _FrameDecoder.__new__(_FrameDecoder)
    decoder.t = Fake()
    speech = np.array([ID["医"]] * 5)
    pause = np.zeros(_BEAM_PAUSE_FRAMES + 4, dtype=int)
    best = np.concatenate([speech, pause, speech, [0, 0]])
    assert decoder._beam_cut(best) == 5 + _BEAM_PAUSE_FRAMES // 2
    assert decoder._beam_cut(np.concatenate([speech, [0] * 3, speech])) == 0  # wait for more


def test_a_missing_domain_text_fails_before_any_audio_is_read(tiny_model_dir, tmp_path):
    from engine.cli import build_parser
    from engine.model import LoadOptions, load_model
    from engine.transcribe import TranscribeOptions, Transcriber

    args = build_parser().parse_args(
        ["transcribe", "a.wav", "--decoder", "greedy", "--domain-text", "d.txt", "--hotwords",
         "h.txt"]
    )  # fmt: skip
    assert (args.decoder, args.domain_text, args.hotwords) == ("greedy", "d.txt", "h.txt")
    t = Transcriber(load_model(tiny_model_dir, LoadOptions(device="cpu", precision="fp32")))
    options = TranscribeOptions(domain_text=str(tmp_path / "none.txt"))
    with pytest.raises(LmError, match="cannot read the domain text"):
        t.transcribe(np.zeros(16000, np.float32), options)


def test_a_tuned_model_keeps_its_base_models_language_model(tiny_with_lm, tmp_path):
    from transformers import AutoModelForCTC, AutoProcessor

    from engine.tune.export import ModelCard, save_merged

    card = ModelCard(str(tiny_with_lm), "full", 1, 1, 1.0, 0, None, None, "data.tsv")
    model = AutoModelForCTC.from_pretrained(tiny_with_lm)
    processor = AutoProcessor.from_pretrained(tiny_with_lm)
    out = save_merged(model, processor, tmp_path / "tuned", card)
    assert ModelLM.from_folder(out) is not None
    assert (out / "lm" / "lm.json").read_bytes() == (tiny_with_lm / "lm" / "lm.json").read_bytes()
    # Given its training transcripts, the tuned model's LM learns them as its domain, over
    # every character the tuned model writes (the base LM's own files are kept as they were).
    vocab = [t for t in processor.tokenizer.get_vocab() if len(t) == 1 and t != "|"]
    lines = [vocab[0] + vocab[1] + vocab[2], vocab[3] + vocab[4], vocab[3] + vocab[4]]
    out = save_merged(model, processor, tmp_path / "tuned-lm", card, lines)
    tuned = ModelLM.from_folder(out)
    assert tuned is not None and tuned.domain is not None
    assert set(vocab) <= tuned.domain.vocab
    assert json.loads((out / "lm" / "lm.json").read_text("utf-8"))["domain"]["sentences"] == 2
    arpa = (tiny_with_lm / "lm").glob("*.arpa.gz")
    assert all((out / "lm" / a.name).read_bytes() == a.read_bytes() for a in arpa)
    general = tuned.ngram.prob(("<s>",), vocab[3])
    assert tuned.language_model().prob(("<s>",), vocab[3]) > general


def test_exactly_tied_scores_decode_the_same_way_every_time(tiny_with_lm, noise_and_domain_text):
    """bf16 logits tie exactly, and flashlight orders tied candidates by their states' memory
    addresses: a file decoded to another text after a decode with domain text than before it
    (found through the app's domain-text test). The decoder now breaks every tie one way."""
    import soundfile as sf

    from engine.model import LoadOptions, load_model
    from engine.results import Segment
    from engine.transcribe import TranscribeOptions, Transcriber

    audio, domain = noise_and_domain_text
    t = Transcriber(load_model(tiny_with_lm, LoadOptions(device="cpu", precision="bf16")))
    lp = t.log_probs([sf.read(audio, dtype="float32")[0]])[0]
    assert any(len(np.unique(row)) < len(row) for row in lp)  # the ties are there

    def text(options=None) -> str:
        items, _ = t.transcribe(str(audio), options)
        return "".join(c.text for s in items if isinstance(s, Segment) for c in s.chars)

    texts = []
    for _ in range(5):  # the addresses differ from one decode to the next
        texts.append(text())
        text(TranscribeOptions(domain_text=str(domain)))
    assert texts[0] and len(set(texts)) == 1, texts


# A search in an app-like engine thread: Qt's thread, into which PySide enters Python with a
# new thread state on each queued call; flashlight is first imported in one call and searches
# in later ones, while other Python threads come and go.
QT_THREAD_SEARCH = """
import json, threading, time
import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer, Signal, Slot
from engine.lm import BeamDecoder, BeamOptions
from engine.ngram import train_ngram

VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", "医", "一", "生", "个", "人", "好", "看"]
lp = np.log(np.random.default_rng(0).dirichlet(np.ones(len(VOCAB)), size=40)).astype(np.float32)
beam = None


class Worker(QObject):
    done = Signal(str)

    @Slot()
    def search(self):
        global beam
        if beam is None:  # flashlight is imported here, inside this call
            lm = train_ngram(["医生好", "一个人", "好医生"], 3, VOCAB[5:])
            beam = BeamDecoder(VOCAB, 0, frozenset({0, 1, 2, 3}), "|", lm=lm,
                               options=BeamOptions(lm_weight=1.0))
        self.done.emit("".join(c.text for c in beam.chars(lp, frame_seconds=0.02)))


class Go(QObject):
    search = Signal()


app = QCoreApplication([])
thread, worker, go = QThread(), Worker(), Go()
worker.moveToThread(thread)
thread.start()
results, others = [], []


def got(text):
    results.append(text)
    others.append(threading.Thread(target=time.sleep, args=(0.05,)))
    others[-1].start()
    if len(results) == 4:
        app.quit()
    else:
        QTimer.singleShot(10, go.search.emit)


go.search.connect(worker.search)
worker.done.connect(got)
QTimer.singleShot(0, go.search.emit)
app.exec()
thread.quit()
thread.wait()
print("RESULTS", json.dumps(results))
"""


def test_a_search_on_a_qt_thread_survives_its_changing_thread_states(tmp_path):
    """flashlight's callbacks into the Python LM took the GIL with the thread state its
    pybind11 had stored for the thread when first imported there: on the app's engine thread,
    one PySide had already deleted (a hang or a segfault in take_gil, seen in the app's
    end-to-end test). The searches now run on a thread Python started."""
    import os
    import subprocess
    import sys

    script = tmp_path / "search.py"
    script.write_text(QT_THREAD_SEARCH, encoding="utf-8")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    root = str(Path(__file__).resolve().parents[1])  # where `engine` is
    done = subprocess.run([sys.executable, str(script)], cwd=root, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.split("RESULTS", 1)[1])
    assert len(results) == 4 and len(set(results)) == 1 and results[0]
