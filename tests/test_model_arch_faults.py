"""Checkpoints of the families the README promises that did not load as they should
(engine.model, engine.registry): MMS's per-language vocabularies and adapters, WavLM given
flash-attention-2, and a pretrained encoder with neither vocabulary nor CTC head."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import engine.model
from engine.model import (
    LoadOptions,
    ModelLoadError,
    check_json,
    load_model,
    model_vocab,
    pick_attention,
    resolve_model,
)
from engine.registry import FAMILIES
from engine.testmodels import COMMON_CHARS, SPECIAL_TOKENS, build_model

FP32 = LoadOptions(precision="fp32", device="cpu")
MANDARIN = "cmn-script_simplified"
LANGUAGES = {MANDARIN: COMMON_CHARS[:60], "eng": "abcdefghijklmnopqrstuvwxyz'"}


def _vocabulary(chars: str) -> dict[str, int]:
    tokens = [*SPECIAL_TOKENS, *dict.fromkeys(chars)]
    return {t: i for i, t in enumerate(tokens)}


def _edit(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _tokenizer_files(folder: Path, languages: dict[str, str], target_lang: str | None) -> Path:
    """vocab.json with one vocabulary per language (MMS's layout) and a tokenizer_config.json
    naming `target_lang` (none: None)."""
    folder.mkdir(parents=True, exist_ok=True)
    vocabs = {lang: _vocabulary(chars) for lang, chars in languages.items()}
    (folder / "vocab.json").write_text(json.dumps(vocabs, ensure_ascii=False), encoding="utf-8")
    config = {"tokenizer_class": "Wav2Vec2CTCTokenizer", "word_delimiter_token": "|"}
    if target_lang is not None:
        config["target_lang"] = target_lang
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def _mms(folder: Path, target_lang: str | None = MANDARIN) -> Path:
    """A tiny MMS-1b-all-like checkpoint: one vocabulary per language, weights whose own
    adapter and CTC head are English's, and each language's adapter (other random weights) in
    adapter.<language>.safetensors."""
    from safetensors.torch import save_file
    from transformers import AutoConfig, Wav2Vec2ForCTC

    build_model(folder, chars=LANGUAGES["eng"])
    _tokenizer_files(folder, LANGUAGES, target_lang)
    config = AutoConfig.from_pretrained(folder)
    config.adapter_attn_dim = 16
    for seed, (language, chars) in enumerate(LANGUAGES.items(), start=1):
        config.vocab_size = len(_vocabulary(chars))
        torch.manual_seed(seed)
        adapters = Wav2Vec2ForCTC(config)._get_adapters()
        weights = {name: t.detach().contiguous() for name, t in adapters.items()}
        save_file(weights, folder / f"adapter.{language}.safetensors")
    config.vocab_size = len(_vocabulary(LANGUAGES["eng"]))
    torch.manual_seed(0)
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def mms_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _mms(tmp_path_factory.mktemp("mms") / "mms")


def _logits(model, seed: int = 0) -> torch.Tensor:
    x = torch.randn(1, 16_000, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        return model(x).logits


# ---- 1: MMS ----------------------------------------------------------------------------------
@pytest.mark.parametrize("target_lang", ["eng", MANDARIN, None])
def test_an_mms_checkpoint_loads_mandarin_with_its_adapter(mms_dir, tmp_path, target_lang):
    """It was refused with a 4,500-character message quoting the whole vocabulary as a damaged
    id. Now Mandarin is read, whatever tokenizer_config.json's target_lang (MMS-1b-all's is
    "eng", its default), and its adapter loaded: the outputs transformers gives with it."""
    from transformers import Wav2Vec2ForCTC

    folder = shutil.copytree(mms_dir, tmp_path / "mms")
    _tokenizer_files(folder, LANGUAGES, target_lang)
    loaded = load_model(folder, FP32)
    vocab = _vocabulary(LANGUAGES[MANDARIN])
    assert loaded.vocab == list(vocab) and loaded.blank_id == 0
    assert loaded.model.lm_head.out_features == len(vocab)
    reference = Wav2Vec2ForCTC.from_pretrained(folder, target_lang=MANDARIN).eval()
    torch.testing.assert_close(_logits(loaded.model), _logits(reference))
    english = Wav2Vec2ForCTC.from_pretrained(folder).eval()  # the weights' own adapter
    assert english.lm_head.out_features != len(vocab)


def test_a_tuned_mms_model_loads_the_language_its_weights_hold(mms_dir, tmp_path):
    """What a tuning job saves of an MMS base: the processor's per-language vocab.json and
    target_lang, and weights holding the language's adapter and head, with no adapter file."""
    from transformers import AutoProcessor, Wav2Vec2ForCTC

    model = Wav2Vec2ForCTC.from_pretrained(mms_dir, target_lang=MANDARIN)
    processor = AutoProcessor.from_pretrained(mms_dir, target_lang=MANDARIN)
    tuned = tmp_path / "tuned"
    model.save_pretrained(tuned)
    processor.save_pretrained(tuned)
    assert not list(tuned.glob("adapter.*")) and MANDARIN in json.loads(
        (tuned / "vocab.json").read_text(encoding="utf-8")
    )
    loaded = load_model(tuned, FP32)
    assert loaded.vocab == list(_vocabulary(LANGUAGES[MANDARIN]))
    torch.testing.assert_close(_logits(loaded.model), _logits(model.eval()))
    assert sorted(model_vocab(tuned) or ()) == sorted(_vocabulary(LANGUAGES[MANDARIN]))


@pytest.mark.parametrize(
    ("languages", "target_lang", "chosen"),
    [
        ({"eng": "ab", "cmn-script_traditional": "丟", MANDARIN: "的"}, None, MANDARIN),
        ({"eng": "ab", "cmn-script_traditional": "丟"}, None, "cmn-script_traditional"),
        ({"eng": "ab", MANDARIN: "的"}, "eng", MANDARIN),
        ({"eng": "ab", "yue": "的"}, "yue", "yue"),
        ({"eng": "ab"}, "eng", "eng"),
    ],
)
def test_the_language_read_is_mandarin_else_the_tokenizers(
    tmp_path, languages, target_lang, chosen
):
    assert check_json(_tokenizer_files(tmp_path / "m", languages, target_lang)) == chosen


def test_a_flat_vocabulary_has_no_language(tiny_model_dir):
    assert check_json(tiny_model_dir) is None


def test_a_per_language_vocabulary_without_mandarin_says_what_it_holds(tmp_path):
    languages = {f"l{i:02d}": "ab" for i in range(20)}
    folder = _tokenizer_files(tmp_path / "m", languages, None)
    with pytest.raises(ModelLoadError) as e:
        check_json(folder)
    message = str(e.value)
    assert e.value.code == "model.vocab_no_mandarin" and e.value.params["count"] == 20
    assert str(folder / "vocab.json") in message and "l00, l01" in message and "…" in message
    assert "l19" not in message and "set target_lang in tokenizer_config.json" in message


def test_a_target_lang_the_vocabulary_lacks_is_named(tmp_path):
    folder = _tokenizer_files(tmp_path / "m", {"eng": "ab", "yue": "的"}, "fra")
    with pytest.raises(ModelLoadError) as e:
        check_json(folder)
    assert e.value.code == "model.vocab_language_missing"
    assert str(folder / "tokenizer_config.json") in str(e.value)
    assert "'fra'" in str(e.value) and "eng, yue)" in str(e.value)


def test_a_damaged_vocabulary_is_quoted_briefly(tiny_model_dir, tmp_path):
    """A vocab.json mixing ids and a whole vocabulary: the error quoted all of it."""
    folder = shutil.copytree(tiny_model_dir, tmp_path / "m")
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    (folder / "vocab.json").write_text(
        json.dumps({**vocab, MANDARIN: vocab}, ensure_ascii=False), encoding="utf-8"
    )
    with pytest.raises(ModelLoadError) as e:
        load_model(folder, FP32)
    assert e.value.code == "model.bad_vocab" and len(str(e.value)) < 300
    assert f"maps '{MANDARIN}' to {{'" in str(e.value) and "...}" in str(e.value)


def test_a_hub_download_fetches_the_adapter_of_the_language_read_alone(monkeypatch, mms_dir):
    """MMS-1b-all holds 1,162 adapters of ~9 MB: the snapshot took every one of them."""
    import huggingface_hub
    from huggingface_hub.utils import filter_repo_objects

    snapshot = mms_dir.parent / "0123abcd"  # a snapshot folder is named by its commit
    shutil.copytree(mms_dir, snapshot, dirs_exist_ok=True)
    listing = ["config.json", "model.safetensors", "vocab.json", "tokenizer_config.json",
               "adapter.eng.safetensors", f"adapter.{MANDARIN}.safetensors",
               "adapter.fra.safetensors", "adapter_model.safetensors"]  # fmt: skip
    asked: dict[str, object] = {}

    def fake_snapshot(repo_id, **kw):
        patterns = {k: kw[k] for k in ("allow_patterns", "ignore_patterns")}
        asked["snapshot"] = set(filter_repo_objects(listing, **patterns))
        return str(snapshot)

    def fake_file(repo_id, filename, **kw):
        asked["file"] = (repo_id, filename, kw.get("revision"))
        return str(snapshot / filename)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_file)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)  # conftest's, read as hub's
    assert resolve_model("facebook/mms-like") == snapshot
    assert not {n for n in asked["snapshot"] if n.startswith("adapter.")}
    assert "adapter_model.safetensors" in asked["snapshot"]  # a LoRA adapter's, not MMS's
    assert asked["file"] == ("facebook/mms-like", f"adapter.{MANDARIN}.safetensors", "0123abcd")


# ---- 2: flash-attention-2 where the family has none ------------------------------------------
def test_auto_attention_picks_flash_only_for_families_that_have_it(monkeypatch):
    """WavLM on CUDA with flash-attn installed was given flash_attention_2, which transformers
    refuses for WavLMForCTC ("does not support Flash Attention 2 yet")."""
    monkeypatch.setattr(engine.model, "_flash_attn_installed", lambda: True)
    cuda, bf16 = torch.device("cuda"), torch.bfloat16
    assert pick_attention("auto", FAMILIES["wavlm"], cuda, bf16) == "eager"
    for model_type in ("wav2vec2", "hubert", "data2vec-audio"):
        assert pick_attention("auto", FAMILIES[model_type], cuda, bf16) == "flash_attention_2"
    with pytest.raises(ModelLoadError) as e:
        pick_attention("flash_attention_2", FAMILIES["wavlm"], cuda, bf16)
    assert e.value.code == "model.flash_unsupported"
    assert "attention=flash_attention_2" in str(e.value) and "wavlm" in str(e.value)
    assert "use eager" in str(e.value)


def test_flash_support_is_what_transformers_says_of_the_model_class(monkeypatch):
    from transformers import WavLMForCTC

    assert not FAMILIES["wavlm"].supports_flash_attention()
    monkeypatch.setattr(WavLMForCTC, "_supports_flash_attn", True)
    assert FAMILIES["wavlm"].supports_flash_attention()


# ---- 3: a pretrained encoder ------------------------------------------------------------------
def _encoder(tiny_model_dir: Path, folder: Path, keep_vocab: bool = False) -> Path:
    """The tiny model as a pretrained base checkpoint ships: no CTC head, and (unless
    `keep_vocab`) no vocabulary or tokenizer files."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(tiny_model_dir, folder)
    weights = load_file(folder / "model.safetensors")
    kept = {k: v for k, v in weights.items() if not k.startswith("lm_head.")}
    save_file(kept, folder / "model.safetensors", metadata={"format": "pt"})
    if not keep_vocab:
        for name in ("vocab.json", "tokenizer_config.json", "special_tokens_map.json"):
            (folder / name).unlink(missing_ok=True)
    return folder


def test_a_pretrained_encoder_is_told_as_one_to_transcribe_and_to_tune(tiny_model_dir, tmp_path):
    """It was "missing vocab.json; copy the complete checkpoint folder", from transcription
    and tuning (both resolve the model first), as if the copy had been cut short."""
    folder = _encoder(tiny_model_dir, tmp_path / "base")
    for load in (lambda: load_model(folder, FP32), lambda: resolve_model(folder)):
        with pytest.raises(ModelLoadError) as e:
            load()
        assert e.value.code == "model.pretrained_encoder"
        assert str(folder) in str(e.value) and "cannot transcribe" in str(e.value)
        assert "tingxie-cli tune" in str(e.value)
    headless = _encoder(tiny_model_dir, tmp_path / "headless", keep_vocab=True)
    with pytest.raises(ModelLoadError) as e:  # with a vocabulary, it tunes into a CTC model
        load_model(headless, FP32)
    assert e.value.code == "model.no_ctc_head"


def test_the_tune_check_refuses_a_pretrained_encoder_before_the_job_starts(
    tiny_model_dir, tmp_path
):
    """The check said only "the vocabulary is not at hand … the job reports them when it
    starts", and the job then failed on loading the base."""
    from dataclasses import replace

    from test_data_faults import _wav

    from engine.tune.config import TuneConfig
    from engine.tune.prepare import check_data

    manifest = tmp_path / "m.tsv"
    manifest.write_text(f"path\ttext\n{_wav(tmp_path / 'a.wav')}\t天地\n", encoding="utf-8")
    base = _encoder(tiny_model_dir, tmp_path / "base")
    config = TuneConfig(model=str(base), data=str(manifest), output_dir=str(tmp_path / "job"))
    check = check_data([manifest], config)
    (issue,) = [i for i in check.issues if i.blocking]
    assert issue.kind == "no_model" and issue.code == "model.pretrained_encoder"
    assert "no_vocabulary" not in [i.kind for i in check.issues]
    check = check_data([manifest], replace(config, model=str(tiny_model_dir)))
    assert "no_model" not in [i.kind for i in check.issues]
