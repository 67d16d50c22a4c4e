"""Model loading faults a hunt found (engine.model, engine.decode, engine.registry): Hub ids
with pickle weights only, an MMS model without its adapter, spaces between Latin words, a
vocabulary without the CTC blank, a tuning job's folder as a model, sharded pickle weights and
HF_HUB_OFFLINE read unlike huggingface_hub. The Hub is faked: nothing touches the network."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from test_model_arch_faults import MANDARIN, _mms

import engine.whisper
from engine.decode import ctc_greedy
from engine.model import (
    LoadOptions,
    ModelLoadError,
    load_model,
    model_file,
    model_vocab,
    resolve_model,
)
from engine.registry import is_onnx_export
from engine.results import Segment
from engine.writers import render

FP32 = LoadOptions(precision="fp32", device="cpu", backend="torch")
PICKLE = replace(FP32, allow_pickle=True)


def _edit(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _state(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """A Hub whose snapshot download leaves the JSON files of `repo` (a folder) in a snapshot
    folder, as the filtered download of a repository without safetensors weights does, and
    whose single-file download copies the file from `repo`. Online unless the test says not."""
    import huggingface_hub

    snapshot = tmp_path / "hub" / "def456"  # a snapshot folder is named by its commit
    asked: dict[str, list] = {"snapshot": [], "file": [], "exists": []}
    hub: dict[str, Path] = {}

    def fake_snapshot(repo_id, **kw):
        asked["snapshot"].append(kw.get("local_files_only"))
        if not snapshot.is_dir():
            snapshot.mkdir(parents=True)
            for f in hub["repo"].glob("*.json"):
                shutil.copy(f, snapshot / f.name)
        return str(snapshot)

    def fake_file(repo_id, filename, **kw):
        asked["file"].append((filename, kw.get("revision")))
        shutil.copy(hub["repo"] / filename, snapshot / filename)
        return str(snapshot / filename)

    def fake_exists(repo_id, filename, **kw):
        asked["exists"].append((filename, kw.get("revision")))
        return (hub["repo"] / filename).is_file()

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_file)
    monkeypatch.setattr(huggingface_hub, "file_exists", fake_exists)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)  # conftest's, read as hub's
    return hub, snapshot, asked


@pytest.fixture
def bin_only(tiny_model_dir, tmp_path) -> Path:
    """The tiny model with its weights as pytorch_model.bin only (the XLSR sprint's layout)."""
    folder = shutil.copytree(tiny_model_dir, tmp_path / "bin-only")
    torch.save(_state(folder), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    return folder


# ---- 1: a Hub id whose only weights are pytorch_model.bin ------------------------------------
def test_a_hub_id_with_pickle_weights_only_says_so(fake_hub, bin_only, monkeypatch):
    """Online it said the cache's snapshot folder "is missing model.safetensors; copy the
    complete checkpoint folder"; offline, that the download stopped and to reconnect, which
    failed the same way forever."""
    hub, snapshot, asked = fake_hub
    hub["repo"] = bin_only
    with pytest.raises(ModelLoadError) as e:
        resolve_model("old/binonly")
    assert e.value.code == "model.hub_pickle_only"
    assert "pytorch_model.bin" in str(e.value) and "--allow-pickle" in str(e.value)
    assert asked["exists"] == [("pytorch_model.bin", "def456")] and asked["file"] == []
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a .bin fetched before, now not allowed
    shutil.copy(bin_only / "pytorch_model.bin", snapshot)
    with pytest.raises(ModelLoadError) as e:
        resolve_model("old/binonly")
    assert e.value.code == "model.hub_pickle_only"


def test_a_hub_id_with_pickle_weights_only_loads_when_allowed(fake_hub, bin_only):
    """--allow-pickle (allow_pickle) did nothing for a Hub id: the download never took *.bin."""
    hub, snapshot, asked = fake_hub
    hub["repo"] = bin_only
    loaded = load_model("old/binonly", PICKLE)
    assert loaded.path == snapshot and asked["file"] == [("pytorch_model.bin", "def456")]
    assert loaded.runtime == "torch"


def test_a_tuning_job_on_a_hub_id_with_pickle_weights_only_names_its_setting(
    fake_hub, bin_only, tmp_path
):
    """A job has no --allow-pickle: its message names the job's setting, as for a folder."""
    from engine.tune.config import TuneConfig
    from engine.tune.events import JobFailed
    from engine.tune.loop import run_job
    from engine.tune.testdata import tone_corpus

    hub, _, _ = fake_hub
    hub["repo"] = bin_only
    manifest = tone_corpus(tmp_path / "data", 4, char_seconds=0.1, seed=0)
    config = TuneConfig(model="old/binonly", data=str(manifest), output_dir=str(tmp_path / "job"),
                        method="full", steps=1, device="cpu")  # fmt: skip
    last = list(run_job(config))[-1]
    assert isinstance(last, JobFailed) and "old/binonly" in last.message
    assert "allow_pickle: true" in last.message  # the job's setting, not only the CLI's option


# ---- 2: MMS without the adapter of the language read ------------------------------------------
@pytest.fixture(scope="module")
def mms_without_adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = _mms(tmp_path_factory.mktemp("mms") / "mms", target_lang="eng")
    (folder / f"adapter.{MANDARIN}.safetensors").unlink()
    return folder


def test_an_mms_folder_without_its_adapter_names_the_adapter(mms_without_adapter):
    """It said vocab.json "does not fit the model's CTC output layer; re-copy vocab.json":
    vocab.json was fine, and the missing file was never named."""
    with pytest.raises(ModelLoadError) as e:
        load_model(mms_without_adapter, FP32)
    adapter = f"adapter.{MANDARIN}.safetensors"
    assert e.value.code == "model.adapter_missing" and e.value.params["missing"] == adapter
    assert "re-copy vocab.json" not in str(e.value) and str(mms_without_adapter) in str(e.value)


def test_an_mms_snapshot_without_its_adapter_offline_says_to_finish_the_download(
    mms_without_adapter, monkeypatch
):
    import huggingface_hub

    monkeypatch.setattr(
        huggingface_hub, "snapshot_download", lambda repo_id, **kw: str(mms_without_adapter)
    )
    with pytest.raises(ModelLoadError) as e:
        resolve_model("fake/mms")  # offline: conftest sets HF_HUB_OFFLINE=1
    assert e.value.code == "model.download_incomplete"
    assert e.value.params["missing"] == f"adapter.{MANDARIN}.safetensors"


# ---- 3: the word delimiter between Latin letters ----------------------------------------------
def _path_log_probs(vocab: list[str], path: str) -> np.ndarray:
    """Log-probabilities whose greedy path is `path` (one frame per token, "_" the blank)."""
    lp = np.full((len(path), len(vocab)), -10.0, dtype=np.float32)
    for f, token in enumerate(path):
        lp[f, vocab.index("<pad>" if token == "_" else token)] = 0.0
    return lp


@pytest.mark.parametrize(
    ("letters", "path", "text", "written"),
    [
        ("abcdefghijklmnopqrstuvwxyz", "hi_|yo", "hiyo", "hi yo"),
        ("你好ok", "你|好", "你好", "你好"),  # Chinese gets no space
        ("你好ok", "你|ok|好", "你ok好", "你ok好"),
        ("你好ok", "ok|ok", "okok", "ok ok"),  # Latin words inside a Chinese vocabulary
    ],
)
def test_the_word_delimiter_between_latin_letters_is_a_space(letters, path, text, written):
    """ "hello world" came out "helloworld" in every format."""
    vocab = ["<pad>", "<s>", "</s>", "<unk>", "|", *letters]
    chars = ctc_greedy(
        _path_log_probs(vocab, path),
        vocab=vocab,
        blank_id=0,
        special_ids=frozenset({1, 2, 3}),
        word_delimiter="|",
        frame_seconds=0.02,
    )
    segment = Segment(0, 0.0, 1.0, tuple(chars))
    assert segment.text == text and segment.punctuated == written  # one Char per character
    for fmt in ("txt", "srt"):
        assert written in render([segment], fmt), fmt


# ---- 4: a vocabulary without the blank -------------------------------------------------------
@pytest.mark.parametrize("pad_token_id", [None, 999])
def test_a_vocabulary_without_the_blank_is_refused(tiny_model_dir, tmp_path, pad_token_id):
    """<pad> dropped from vocab.json: transformers added it past the head and it became a
    blank no output is, so silence was written as characters without a word of warning."""
    folder = shutil.copytree(tiny_model_dir, tmp_path / "nopad")
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    renumbered = {t: i - 1 for t, i in vocab.items() if t != "<pad>"}
    (folder / "vocab.json").write_text(json.dumps(renumbered, ensure_ascii=False), "utf-8")
    from safetensors.torch import save_file

    state = _state(folder)
    for name in ("lm_head.weight", "lm_head.bias"):
        state[name] = state[name][1:].contiguous()
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    _edit(folder / "config.json", vocab_size=len(renumbered), pad_token_id=pad_token_id)
    tokenizer = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    added = tokenizer.get("added_tokens_decoder", {})
    tokenizer["added_tokens_decoder"] = {
        str(int(k) - 1): x for k, x in added.items() if x["content"] != "<pad>"
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    with pytest.raises(ModelLoadError) as e:
        load_model(folder, FP32)
    assert e.value.code == "model.no_blank" and e.value.params["path"] == folder / "vocab.json"
    assert "pad_token_id" in str(e.value)


# ---- 5: a tuning job's folder as the model -----------------------------------------------------
def test_a_job_folders_files_are_its_models(tiny_model_dir, tmp_path):
    """model_file read the job's own config.json (its settings) and model_vocab gave None: the
    Tune page said the vocabulary "is not at hand" and no new characters were reported."""
    job = tmp_path / "job"
    shutil.copytree(tiny_model_dir, job / "model")
    (job / "config.json").write_text(json.dumps({"output_dir": str(job)}), encoding="utf-8")
    assert model_file(job, "config.json") == job / "model" / "config.json"
    vocab = model_vocab(job / "model")
    assert vocab is not None and model_vocab(job) == vocab


# ---- 6: sharded pickle weights ---------------------------------------------------------------
@pytest.fixture
def sharded_bin(tiny_model_dir, tmp_path) -> Path:
    folder = shutil.copytree(tiny_model_dir, tmp_path / "sharded-bin")
    state = _state(folder)
    (folder / "model.safetensors").unlink()
    names = sorted(state)
    weight_map = {}
    for n, part in enumerate((names[: len(names) // 2], names[len(names) // 2 :]), start=1):
        shard = f"pytorch_model-0000{n}-of-00002.bin"
        torch.save({k: state[k] for k in part}, folder / shard)
        weight_map.update(dict.fromkeys(part, shard))
    index = {"metadata": {}, "weight_map": weight_map}
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index), encoding="utf-8")
    return folder


def test_sharded_pickle_weights_are_weights(sharded_bin):
    """They were "missing model.safetensors (or pytorch_model.bin)", even with allow_pickle."""
    with pytest.raises(ModelLoadError) as e:
        load_model(sharded_bin, FP32)
    assert e.value.code == "model.pickle_only"
    loaded = load_model(sharded_bin, PICKLE)
    assert loaded.runtime == "torch"
    (sharded_bin / "model.onnx").write_bytes(b"")  # beside them, an export is no ONNX-only one
    assert not is_onnx_export(sharded_bin)


# ---- 7: HF_HUB_OFFLINE as huggingface_hub reads it ---------------------------------------------
@pytest.mark.parametrize(("value", "offline"), [("no", False), ("off", False), ("ON", True)])
def test_hf_hub_offline_is_read_as_huggingface_hub_reads_it(monkeypatch, value, offline):
    """ "no" and "off" meant offline to Tingxie, online to huggingface_hub: a connected user
    was told the model is not cached and never got it downloaded."""
    import faster_whisper.utils
    import huggingface_hub

    asked = []

    def fake(repo_id, local_files_only=False, **kw):
        asked.append(local_files_only)
        raise OSError("stop here")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    monkeypatch.setattr(faster_whisper.utils, "download_model", fake)
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    for load in (resolve_model, lambda s: engine.whisper._resolve(s, LoadOptions())):
        with pytest.raises(ModelLoadError):
            load("someone/some-model")
    assert asked == [offline, offline]


def test_offline_by_hf_hub_offline_is_said(monkeypatch):
    """The variable left in a shell profile was never named: nothing said why a connected
    machine downloaded nothing."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as e:
        resolve_model("nobody-tingxie/no-such-model")
    assert e.value.code == "model.not_cached" and "HF_HUB_OFFLINE=1" in str(e.value)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with pytest.raises(ModelLoadError) as e:
        resolve_model("nobody-tingxie/no-such-model", local_files_only=True)
    assert e.value.code == "model.not_cached" and "HF_HUB_OFFLINE" not in str(e.value)


# ---- 8: regressions of the hunt (review hR3) --------------------------------------------------
def test_a_tuned_mms_model_without_an_adapter_file_loads(tmp_path, monkeypatch):
    """The "fine-tune MMS adapter" layout (vocab.json {cmn: chars, [UNK], [PAD]}, a head of
    len(tokenizer) rows: <s> and </s> added) was refused as missing its adapter, a file such a
    model has no need of; offline it was a download "to finish" forever."""
    from transformers import AutoConfig, Wav2Vec2CTCTokenizer, Wav2Vec2ForCTC

    from engine.testmodels import build_model

    folder = build_model(tmp_path / "tuned-mms", chars=["你", "好", "a", "b"])
    vocab = {c: i for i, c in enumerate(["|", "你", "好", "a", "b", "[UNK]", "[PAD]"])}
    (folder / "vocab.json").write_text(json.dumps({MANDARIN: vocab}, ensure_ascii=False), "utf-8")
    for name in ("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"):
        (folder / name).unlink(missing_ok=True)
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), unk_token="[UNK]",
                                     pad_token="[PAD]", target_lang=MANDARIN)  # fmt: skip
    tokenizer.save_pretrained(folder)
    config = AutoConfig.from_pretrained(folder)
    config.vocab_size, config.pad_token_id = len(tokenizer), vocab["[PAD]"]
    torch.manual_seed(0)
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    assert load_model(folder, FP32).runtime == "torch"
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, **kw: str(folder))
    assert resolve_model("someone/tuned-mms") == folder  # offline: conftest's HF_HUB_OFFLINE


def test_cached_pickle_weights_load_while_the_hub_cannot_be_reached(
    fake_hub, bin_only, monkeypatch
):
    """A model fetched with allow-pickle loaded only online: the Hub was asked whether it has
    pytorch_model.bin, and a network outage became "could not be downloaded"."""
    import httpx2
    import huggingface_hub

    hub, snapshot, asked = fake_hub
    hub["repo"] = bin_only

    def down(*args, **kw):
        asked["exists"].append("down")
        raise httpx2.ConnectError("no network")

    monkeypatch.setattr(huggingface_hub, "file_exists", down)
    with pytest.raises(ModelLoadError) as e:  # nothing cached: the download is to finish
        resolve_model("old/binonly", allow_pickle=True)
    assert e.value.code == "model.download_incomplete" and "pytorch_model.bin" in str(e.value)
    shutil.copy(bin_only / "pytorch_model.bin", snapshot)  # fetched while online
    asked["exists"].clear()
    assert load_model("old/binonly", PICKLE).path == snapshot and asked["exists"] == []


def test_transformers_offline_is_read_and_named_as_huggingface_hub_reads_it(monkeypatch):
    """huggingface_hub reads TRANSFORMERS_OFFLINE where HF_HUB_OFFLINE is unset; Tingxie did
    not, so the user was told of a failed download, not of the variable."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as e:
        resolve_model("nobody-tingxie/no-such-model")
    assert e.value.code == "model.not_cached" and "TRANSFORMERS_OFFLINE=1" in str(e.value)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # set, it is the one read, as by huggingface_hub
    with pytest.raises(ModelLoadError) as e:
        resolve_model("nobody-tingxie/no-such-model", local_files_only=True)
    assert "OFFLINE" not in str(e.value)


def test_a_pickle_only_repo_without_a_vocabulary_downloads_no_weights(fake_hub, bin_only):
    """Allowing pickle on a pretrained encoder (no vocab.json) fetched its 1.2 GB of weights,
    then said vocab.json is missing."""
    hub, _, asked = fake_hub
    (bin_only / "vocab.json").unlink()
    hub["repo"] = bin_only
    with pytest.raises(ModelLoadError) as e:
        resolve_model("someone/encoder", allow_pickle=True)
    assert e.value.code == "model.folder_incomplete" and "vocab.json" in str(e.value)
    assert asked["exists"] == [] and asked["file"] == []
