"""Synthetic corpus: the text sets' promises, augmentation math, and espeak-ng rendering."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.tune import synth
from engine.tune.synth import SynthOptions

CORPUS = Path(__file__).resolve().parents[1] / "resources" / "corpus"
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


def _corpus(name: str) -> list[str]:
    return synth.read_sentences(CORPUS / f"{name}.txt")


def _build_module():
    spec = importlib.util.spec_from_file_location("corpus_build", CORPUS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_text_sets_are_homophone_free_and_split_cleanly():
    build = _build_module()
    general = _corpus("general/train") + _corpus("general/heldout")
    assert len(general) >= 1000
    assert len(set("".join(general))) >= 250
    assert build.homophones(general) == {}
    assert not set(_corpus("general/train")) & set(_corpus("general/heldout"))
    # every held-out character was seen in training (unseen sentences, same characters)
    assert set("".join(_corpus("general/heldout"))) <= set("".join(_corpus("general/train")))
    for domain in ("medicine", "law"):
        train, heldout = _corpus(f"{domain}/train"), _corpus(f"{domain}/heldout")
        assert not set(train) & set(heldout)
        assert build.homophones(general + train + heldout) == {}
        terms = set("".join(train + heldout)) - set("".join(general))
        assert len(terms) >= 20, f"{domain} has too few characters of its own"
        assert all(set(s) & terms for s in train + heldout), "a domain sentence lacks a term"


def test_build_is_deterministic():
    build = _build_module()
    assert build.build() == build.build()
    assert build.build()["general/heldout"] == _corpus("general/heldout")


def test_to_pinyin_reads_polyphones_in_context():
    assert synth.to_pinyin("银行") == "yin2 hang2"
    assert synth.to_pinyin("长大") == "zhang3 da4"
    assert synth.to_pinyin("我们") == "wo3 men5"


def test_plan_is_seeded():
    sentences = ["今天很好", "我们去公园", "他在看书"]
    options = SynthOptions(seed=3, copies=2)
    first = synth.plan(sentences, options)
    assert first == synth.plan(sentences, options)
    assert [r.index for r in first] == list(range(6))
    assert [r.text for r in first] == sentences * 2
    other = synth.plan(sentences, SynthOptions(seed=4, copies=2))
    assert [(r.speed, r.pitch) for r in other] != [(r.speed, r.pitch) for r in first]
    for r in first:
        assert options.speed_range[0] <= r.speed <= options.speed_range[1]
        assert r.variant in options.variants
        assert r.snr_db in options.snr_choices


def test_passages_join_consecutive_sentences_with_pauses_and_silence():
    sentences = [f"第{i}句" for i in range(20)]
    options = SynthOptions(seed=5, copies=2, sentences_range=(2, 4), silence_range=(0.1, 0.5))
    items = synth.plan(sentences, options)
    assert items == synth.plan(sentences, options)
    assert [r.index for r in items] == list(range(len(items)))
    assert "".join(r.text for r in items) == "".join(sentences) * 2  # each once per copy, in order
    sizes = [len(r.pinyin.split("\n")) for r in items]
    assert max(sizes) <= 4 and sum(s >= 2 for s in sizes) >= len(items) - 2  # only ends shorter
    assert len(set(sizes)) > 1
    for r, size in zip(items, sizes, strict=True):
        assert len(r.pauses) == size - 1
        assert all(0.2 <= p <= 0.8 for p in r.pauses)
        assert 0.1 <= r.lead <= 0.5 and 0.1 <= r.trail <= 0.5


def test_join_speech_places_the_silences():
    a, b = np.ones(100, np.float32), np.full(50, 2.0, np.float32)
    out = synth.join_speech([a, b], [0.01], lead=0.02, trail=0.005, sampling_rate=1000)
    assert out.tolist() == [0.0] * 20 + [1.0] * 100 + [0.0] * 10 + [2.0] * 50 + [0.0] * 5
    with pytest.raises(ValueError, match="2 sentences need 1 pauses"):
        synth.join_speech([a, b], [])


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_add_noise_hits_the_requested_snr(snr_db):
    rng = np.random.default_rng(0)
    t = np.arange(16_000) / 16_000
    clean = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    noisy = synth.add_noise(clean, snr_db, rng)
    noise = noisy.astype(np.float64) - clean
    measured = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2))
    assert measured == pytest.approx(snr_db, abs=0.05)


def test_room_impulse_response_decays_and_reverb_keeps_length_and_peak():
    rng = np.random.default_rng(1)
    rir = synth.room_impulse_response(0.4, rng)
    assert len(rir) == int(0.4 * 16_000)
    assert np.sum(rir**2) == pytest.approx(1.0, rel=1e-4)
    tenth = len(rir) // 10
    assert np.sum(rir[-tenth:] ** 2) < 1e-3 * np.sum(rir[1:tenth] ** 2)
    audio = np.zeros(8000, np.float32)
    audio[100] = 0.5
    wet = synth.reverberate(audio, rir)
    assert len(wet) == len(audio)
    assert np.max(np.abs(wet)) == pytest.approx(0.5, rel=1e-5)
    assert np.count_nonzero(np.abs(wet) > 1e-4) > 1000  # the click now rings


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"copies": 0}, "copies"),
        ({"workers": 3}, "workers"),
        ({"pitch_range": (50, 120)}, "pitch_range"),
        ({"reverb_probability": 1.5}, "reverb_probability"),
        ({"sentences_range": (0, 2)}, "sentences_range"),
        ({"silence_range": (1.0, 0.5)}, "silence_range"),
    ],
)
def test_options_name_the_bad_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SynthOptions(**kwargs)


def test_read_sentences_rejects_empty_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"empty\.txt"):
        synth.read_sentences(path)


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


@needs_espeak
def test_synthesize_writes_a_relative_manifest_deterministically(tmp_path):
    sentences = ["今天的天气很好", "我们去公园散步"]
    options = SynthOptions(seed=7, copies=2, workers=1)
    progress = list(synth.synthesize(sentences, tmp_path / "a", options))
    assert [p.done for p in progress] == [1, 2, 3, 4]
    with open(tmp_path / "a" / "manifest.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert rows[0] == ["path", "text"]
    assert [r[1] for r in rows[1:]] == sentences * 2
    for rel, _ in rows[1:]:
        assert not Path(rel).is_absolute()
        audio, rate = sf.read(tmp_path / "a" / rel)
        assert rate == 16_000 and audio.ndim == 1
        assert 0.8 < len(audio) / rate < 6.0  # seven syllables of speech
    list(synth.synthesize(sentences, tmp_path / "b", SynthOptions(seed=7, copies=2, workers=2)))
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    list(synth.synthesize(sentences, tmp_path / "c", SynthOptions(seed=8, copies=2, workers=1)))
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


@needs_espeak
def test_cli_synth(tmp_path, capsys):
    from engine.cli import main

    text = tmp_path / "s.txt"
    text.write_text("他在看书\n", encoding="utf-8")
    assert main(["synth", str(text), str(tmp_path / "out"), "--snr", "clean,20"]) == 0
    assert (tmp_path / "out" / "manifest.tsv").read_text(encoding="utf-8").splitlines() == [
        "path\ttext",
        "wav/000000.wav\t他在看书",
    ]
    assert main(["synth", str(text), str(tmp_path / "x"), "--snr", "loud"]) == 2
    assert "--snr" in capsys.readouterr().err
    assert main(["synth", str(text), str(tmp_path / "x"), "--sentences", "two"]) == 2
    assert "--sentences 'two'" in capsys.readouterr().err
    text.write_text("他在看书\n我们去公园\n", encoding="utf-8")
    args = ["--sentences", "2-2", "--silence", "0.5-0.5", "--snr", "clean", "--reverb", "0"]
    assert main(["synth", str(text), str(tmp_path / "p"), *args]) == 0
    (row,) = (tmp_path / "p" / "manifest.tsv").read_text(encoding="utf-8").splitlines()[1:]
    assert row == "wav/000000.wav\t他在看书我们去公园"
    audio, rate = sf.read(tmp_path / "p" / "wav" / "000000.wav")
    assert 2.0 < len(audio) / rate < 6.0
    assert np.abs(audio[: rate // 2]).max() < 1e-3  # the leading half second is silent
    assert np.abs(audio[-rate // 2 :]).max() < 1e-3
