"""Sharing on the Hub, checked offline: the exact files and card that would be uploaded, the
token never written by Tingxie, and one clear sentence when the Hub cannot be reached. (The
upload itself is untested here: no network.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main as cli
from engine.testmodels import build_model
from engine.tune.export import ModelCard
from engine.tune.hub import HubError, plan_upload, resolve_token

TOKEN = "hf_tingxie_test_secret_0123456789"


@pytest.fixture
def job(tmp_path) -> Path:
    """A tuning job's output folder: merged model with its card, LoRA adapter, checkpoints."""
    out = tmp_path / "job"
    model = build_model(out / "model", "tiny", seed=0)
    card = ModelCard(base_model="jonatasgrosman/wav2vec2-large-xlsr-53-chinese-zh-cn",
                     method="lora", steps=200, train_examples=150, train_seconds=600.0,
                     heldout_examples=16, cer_before=0.42, cer_after=0.21,
                     data="corrections/clinic")  # fmt: skip
    card.write(model)
    (out / "adapter").mkdir()
    (out / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    (out / "adapter" / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    card.write(out / "adapter")
    (out / "checkpoints" / "step-0000200").mkdir(parents=True)
    (out / "checkpoints" / "step-0000200" / "optimizer.pt").write_bytes(b"\0")
    (model / "pytorch_model.bin").write_bytes(b"pickle")  # never shared
    return out


def test_the_plan_lists_exactly_the_files_and_the_card(job):
    plan = plan_upload(job, "someone/clinic-zh")
    assert plan.folder == job / "model"
    assert plan.files == (
        "config.json", "model.safetensors", "preprocessor_config.json", "processor_config.json",
        "tingxie_card.json", "tokenizer_config.json", "vocab.json",
    )  # fmt: skip
    assert "base_model: jonatasgrosman/wav2vec2-large-xlsr-53-chinese-zh-cn" in plan.card
    assert "held-out CER before: 42.00 %, after: 21.00 %" in plan.card
    assert "150 training utterances (10.0 min), 16 held out" in plan.card
    assert "- license: unknown" in plan.card and "confidence calibration: none" in plan.card


def test_the_adapter_plan(job):
    plan = plan_upload(job, "someone/clinic-zh-lora", adapter=True, private=True)
    assert plan.folder == job / "adapter" and plan.private
    assert plan.files == ("adapter_config.json", "adapter_model.safetensors", "tingxie_card.json")
    assert "library_name: peft" in plan.card


def test_a_tuned_whisper_model_shares_its_ctranslate2_weights(tmp_path):
    """model.bin is CTranslate2's format, not a pickle: a tuned Whisper model could not be
    shared at all ("no safetensors or ONNX weights")."""
    model = tmp_path / "whisper-job" / "model"
    model.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "preprocessor_config.json"):
        (model / name).write_text("{}", encoding="utf-8")
    (model / "model.bin").write_bytes(b"\0" * 64)
    (model / "pytorch_model.bin").write_bytes(b"pickle")  # still never shared
    ModelCard("openai/whisper-base", "lora", 100, 50, 300.0, 8, 0.3, 0.2, "corrections/x",
              family="whisper").write(model)  # fmt: skip
    plan = plan_upload(model.parent, "someone/clinic-whisper")
    assert "model.bin" in plan.files and "pytorch_model.bin" not in plan.files
    assert "library_name: ctranslate2" in plan.card and "tags: [tingxie, whisper" in plan.card


def test_an_onnx_export_keeps_its_checked_figures_in_the_card(tmp_path):
    folder = tmp_path / "onnx-int8"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"\0" * 16)
    (folder / "config.json").write_text("{}", encoding="utf-8")
    (folder / "README.md").write_text(
        "---\nlibrary_name: onnx\n---\n# ONNX export made with Tingxie (听写)\n\n"
        "- source: `/home/me/model`\n- precision: int8 weights (dynamic quantization)\n"
        "- parity: passed\n",
        encoding="utf-8",
    )
    card = plan_upload(folder, "someone/x-int8").card
    assert "library_name: onnx" in card and "library_name: transformers" not in card
    assert "- precision: int8 weights (dynamic quantization)" in card
    assert "- parity: passed" in card and "/home/me" not in card  # no local path uploaded


def test_an_onnx_export_whose_parity_failed_is_not_shared(tmp_path, capsys):
    """It transcribes unlike its source; it was uploaded with FAILED in its card."""
    folder = tmp_path / "onnx-int8"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"\0" * 16)
    (folder / "README.md").write_text(
        "# ONNX export made with Tingxie (听写)\n\n- parity: FAILED\n", encoding="utf-8"
    )
    with pytest.raises(HubError) as e:
        plan_upload(folder, "someone/x-int8")
    assert e.value.code == "hub.parity_failed"
    assert cli(["push", str(folder), "someone/x-int8", "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert str(folder) in err and "FAILED" in err and "export it again" in err


@pytest.mark.parametrize("repo", ["clinic", "a/b/c", "/x", "someone/"])
def test_a_repository_name_must_be_owner_slash_name(job, repo):
    with pytest.raises(HubError) as e:
        plan_upload(job, repo)
    assert e.value.code == "hub.bad_repo"


def test_offline_push_says_so_and_never_writes_the_token(job, tmp_path, monkeypatch, capsys,
                                                         caplog):  # fmt: skip
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    status = cli(["push", str(job), "someone/clinic-zh"])
    out = capsys.readouterr()
    assert status == 1
    assert "cannot be reached" in out.err and str(job / "model") in out.err
    assert "ready to push later" in out.err
    assert TOKEN not in out.out + out.err + caplog.text
    written = [p for p in tmp_path.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert written == []


def test_the_token_comes_from_the_environment_or_the_keyring(monkeypatch):
    import keyring

    monkeypatch.delenv("HF_TOKEN", raising=False)
    stored = {}
    monkeypatch.setattr(keyring, "get_password", lambda service, user: stored.get((service, user)))
    assert resolve_token() is None
    stored[("tingxie", "huggingface")] = "from-keyring"
    assert resolve_token() == "from-keyring"
    monkeypatch.setenv("HF_TOKEN", "from-env")
    assert resolve_token() == "from-env"


def test_no_token_is_a_clear_error(job, monkeypatch, capsys):
    import keyring

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(keyring, "get_password", lambda service, user: None)
    assert cli(["push", str(job), "someone/clinic-zh"]) == 1
    assert "no Hugging Face token" in capsys.readouterr().err


def test_dry_run_prints_the_plan(job, capsys):
    assert cli(["push", str(job), "someone/clinic-zh", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "model.safetensors" in out and "README.md" in out and "optimizer.pt" not in out
    assert json.loads((job / "model" / "tingxie_card.json").read_text())["steps"] == 200


def test_dry_run_of_a_model_whose_card_holds_a_figure_as_text(job, capsys):
    """Before: "train_seconds": "60" was a TypeError traceback while the card was written; now
    the card is shared as for a model without one (its figures left out)."""
    card = job / "model" / "tingxie_card.json"
    card.write_text(json.dumps(json.loads(card.read_text()) | {"train_seconds": "60"}))
    assert cli(["push", str(job), "someone/clinic-zh", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Mandarin speech recognition model shared from Tingxie" in out
    assert "held-out CER" not in out and "training utterances" not in out
