"""Exports of checkpoints that are not what loading accepts, and of adapters that grew the
vocabulary: a checkpoint `transcribe` refuses (no CTC head, a head or vocabulary that does not
fit config.json) is refused by every export before anything is written, and a LoRA adapter
whose head grew says how to load it on its base, which then gives the merged model's logits.
Tiny random models, no network."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from test_model_arch_faults import LANGUAGES, MANDARIN, _mms, _vocabulary

from engine.cli import main as cli
from engine.model import LoadOptions, ModelLoadError, load_model
from engine.testmodels import build_model
from engine.tune.formats import ExportOptions, ExportResult, iter_export, onnx_missing


def _edit_json(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**data, **changes}, ensure_ascii=False), encoding="utf-8")


def _headless(folder: Path) -> None:
    """A pretrained base checkpoint: no lm_head in its weights."""
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "model.safetensors")
    kept = {k: v for k, v in weights.items() if not k.startswith("lm_head.")}
    save_file(kept, folder / "model.safetensors", metadata={"format": "pt"})


def _head_too_small(folder: Path) -> None:
    """config.json asking for more outputs than the weights' head has."""
    size = json.loads((folder / "config.json").read_text(encoding="utf-8"))["vocab_size"]
    _edit_json(folder / "config.json", vocab_size=size + 10)


def _vocab_short(folder: Path) -> None:
    """A vocab.json that names one output of the head fewer (the last character dropped)."""
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    last = max(vocab, key=vocab.__getitem__)
    del vocab[last]
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")


def _vocab_not_ids(folder: Path) -> None:
    _edit_json(folder / "vocab.json", 你="5")


REFUSED: dict[str, tuple[Callable[[Path], None], str]] = {
    "no CTC head": (_headless, "model.no_ctc_head"),
    "head smaller than config": (_head_too_small, "model.head_mismatch"),
    "vocabulary short of the head": (_vocab_short, "model.vocab_mismatch"),
    "vocabulary ids not numbers": (_vocab_not_ids, "model.bad_vocab"),
}


@pytest.mark.parametrize("case", REFUSED, ids=str)
@pytest.mark.parametrize("form", ["hf", "onnx"])
def test_an_export_refuses_what_loading_refuses_before_writing(
    tiny_model_dir, tmp_path, monkeypatch, case, form
):
    """`export --format hf` of a headless checkpoint succeeded (transformers made a random head
    up, and the export "transcribed" gibberish) where transcribe refused it; ONNX wrote the
    whole graph first and only its parity load refused."""
    if form == "onnx" and onnx_missing():
        pytest.skip("the onnx extra is not installed")
    import engine.export_onnx

    spoil, code = REFUSED[case]
    source = tmp_path / "source"
    shutil.copytree(tiny_model_dir, source)
    spoil(source)
    with pytest.raises(ModelLoadError) as loading:
        load_model(source, LoadOptions(precision="fp32"))
    assert loading.value.code == code  # what transcribe says, the export says too

    def no_graph(model: object, path: Path) -> None:
        raise AssertionError("the ONNX graph was written for a checkpoint loading refuses")

    monkeypatch.setattr(engine.export_onnx, "_export_fp32", no_graph)
    stages = []
    with pytest.raises(ModelLoadError) as e:
        for item in iter_export(source, tmp_path / "out", ExportOptions(form)):
            stages.append(getattr(item, "stage", item))
    assert e.value.code == code and str(e.value) == str(loading.value)
    assert stages == ["loading"]
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source"]


def test_the_cli_export_of_a_headless_checkpoint_is_refused(tiny_model_dir, tmp_path, capsys):
    source = tmp_path / "base"
    shutil.copytree(tiny_model_dir, source)
    _headless(source)
    assert cli(["export", str(source), str(tmp_path / "out"), "--format", "hf"]) == 2
    err = capsys.readouterr().err
    assert "no CTC head" in err and "fine-tune it" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "form, target_lang", [("hf", "eng"), ("hf", None), ("onnx", "eng")], ids=str
)
def test_an_mms_export_writes_the_language_loading_reads(tmp_path, form, target_lang):
    """An export must hold the head `transcribe` runs: an MMS checkpoint's weights hold
    English's head (config.json's vocab_size), Mandarin's is in its adapter file; the checks
    that refuse what loading refuses must also pass what loading passes."""
    if form == "onnx" and onnx_missing():
        pytest.skip("the onnx extra is not installed")
    from engine.transcribe import Transcriber

    source = _mms(tmp_path / "mms", target_lang)
    result = list(iter_export(source, tmp_path / "out", ExportOptions(form)))[-1]
    assert isinstance(result, ExportResult) and result.passed, result.lines
    clip = torch.randn(16_000, generator=torch.Generator().manual_seed(0)).numpy()
    want, got = (
        Transcriber(load_model(folder, LoadOptions(precision="fp32"))).log_probs([clip])[0]
        for folder in (source, tmp_path / "out")
    )
    assert want.shape[-1] == len(_vocabulary(LANGUAGES[MANDARIN]))
    assert got.shape == want.shape and abs(got - want).max() < 1e-4


def test_a_sound_checkpoint_still_exports(tiny_model_dir, tmp_path):
    """The checks refuse only what loading refuses."""
    items = list(iter_export(tiny_model_dir, tmp_path / "hf", ExportOptions("hf")))
    assert isinstance(items[-1], ExportResult)
    assert load_model(tmp_path / "hf").vocab == load_model(tiny_model_dir).vocab


# ---- a LoRA adapter whose CTC head grew ------------------------------------------------------
def _grown_adapter(base: Path, target: Path, *, freeze_feature_encoder: bool = True):
    """What a LoRA job with extend_vocab saves: adapters on the family's projections, the CTC
    head grown by two characters and saved whole (made to differ from an untrained adapter)."""
    from transformers import AutoModelForCTC, AutoProcessor

    from engine.registry import FAMILIES
    from engine.tune.export import ModelCard, save_adapter
    from engine.tune.methods import MethodOptions, setup_method
    from engine.tune.vocab import extend_vocabulary

    model = AutoModelForCTC.from_pretrained(base)
    added, processor = extend_vocabulary(model, AutoProcessor.from_pretrained(base), "龙凤")
    assert added == ["龙", "凤"]
    options = MethodOptions("lora", freeze_feature_encoder, lora_rank=4)
    peft_model = setup_method(model, FAMILIES["wav2vec2"], options).eval()
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                p.add_(0.05 * torch.randn_like(p))
    card = ModelCard(str(base), "lora", 2, 12, 6.0, 2, 0.5, 0.4, "d.tsv", added_chars="龙凤")
    return save_adapter(peft_model, processor, target, card), peft_model


def _on_its_base(adapter: Path, base: Path):
    """The adapter put on its base model as its note and card say."""
    from peft import PeftModel
    from transformers import AutoModelForCTC

    note = json.loads((adapter / "tingxie_adapter.json").read_text(encoding="utf-8"))
    model = AutoModelForCTC.from_pretrained(base, **note["load_base_with"])
    return PeftModel.from_pretrained(model, adapter).eval()


@pytest.mark.parametrize("frozen", [True, False], ids=["encoder frozen", "encoder trained"])
def test_an_adapter_whose_head_grew_says_how_to_load_it_on_its_base(tmp_path, frozen):
    """peft refused the adapter of an extend_vocab job on its base model (lm_head: size
    mismatch, 10 rows saved, 8 in the base), and nothing in the folder said what to do. An
    unfrozen feature encoder is saved whole beside the head, and loads as it does."""
    from peft import PeftModel
    from transformers import AutoModelForCTC

    base = build_model(tmp_path / "base", "tiny", chars="天地人", seed=0)
    adapter, tuned = _grown_adapter(base, tmp_path / "adapter", freeze_feature_encoder=frozen)
    with pytest.raises(RuntimeError, match="size mismatch"):  # what the note is for
        PeftModel.from_pretrained(AutoModelForCTC.from_pretrained(base), adapter)
    outputs = tuned.get_base_model().config.vocab_size
    note = json.loads((adapter / "tingxie_adapter.json").read_text(encoding="utf-8"))
    assert note["vocab_size"] == outputs == 10
    assert len(json.loads((adapter / "vocab.json").read_text(encoding="utf-8"))) == outputs
    readme = (adapter / "README.md").read_text(encoding="utf-8")
    assert "- base model:" in readme  # the card is kept, the section added under it
    assert f"vocab_size={outputs}, ignore_mismatched_sizes=True" in readme
    assert f'"{base}"' in readme and "PeftModel.from_pretrained" in readme
    x = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = tuned(input_values=x).logits
        got = _on_its_base(adapter, base)(input_values=x).logits
    assert got.shape[-1] == outputs
    torch.testing.assert_close(got, want)


def test_the_adapter_export_of_an_older_job_gains_the_note(tmp_path):
    """An adapter saved before the note existed: `export --format adapter` (what is shared)
    adds it, and leaves the job's own folder as it was."""
    base = build_model(tmp_path / "base", "tiny", chars="天地人", seed=0)
    adapter, tuned = _grown_adapter(base, tmp_path / "job" / "adapter")
    (adapter / "tingxie_adapter.json").unlink()
    (adapter / "README.md").write_text("# an older card\n", encoding="utf-8")
    assert cli(["export", str(tmp_path / "job"), str(tmp_path / "out"), "--format", "adapter"]) == 0
    assert not (adapter / "tingxie_adapter.json").exists()
    readme = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# an older card\n") and "ignore_mismatched_sizes=True" in readme
    x = torch.randn(1, 16000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = tuned(input_values=x).logits
        got = _on_its_base(tmp_path / "out", base)(input_values=x).logits
    torch.testing.assert_close(got, want)


def test_the_hub_card_of_a_grown_adapter_says_how_to_load_it(tmp_path):
    """What is pushed replaces the folder's README with the Hub card: it dropped the loading
    section, so whoever downloaded the adapter met peft's size mismatch."""
    from safetensors.torch import load_file, save_file

    from engine.tune.hub import plan_upload

    base = build_model(tmp_path / "base", "tiny", chars="天地人", seed=0)
    adapter, _ = _grown_adapter(base, tmp_path / "job" / "model")
    card = plan_upload(adapter, "someone/grown-lora", adapter=True).card
    assert "vocab_size=10, ignore_mismatched_sizes=True" in card
    assert str(tmp_path) not in card  # a local base by its folder's name, as elsewhere
    (adapter / "adapter_model.safetensors").rename(adapter / "adapter_model.bak")
    weights = load_file(adapter / "adapter_model.bak")
    heads = [k for k in weights if k.endswith("lm_head.weight") or k.endswith("lm_head.bias")]
    save_file(
        {k: v for k, v in weights.items() if k not in heads}, adapter / "adapter_model.safetensors"
    )
    assert "ignore_mismatched_sizes" not in plan_upload(adapter, "someone/x", adapter=True).card
