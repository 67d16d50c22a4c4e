"""Export and Hub sharing, faults a review found: what a push-later command, the uploaded files
and the card say about privacy, license and figures; the ONNX parity bound on probabilities;
the files of an hf export. Offline: nothing is uploaded."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from engine.cli import main as cli
from engine.export_onnx import Parity
from engine.testmodels import build_model
from engine.tune.export import ModelCard
from engine.tune.hub import HubError, plan_upload, push

DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo-model"


def _card(**changes) -> ModelCard:
    fields = dict(base_model="someone/base-zh", method="lora", steps=200, train_examples=150,
                  train_seconds=600.0, heldout_examples=20, cer_before=0.42, cer_after=0.21,
                  data="/home/me/clinic.csv")  # fmt: skip
    return ModelCard(**fields | changes)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory) -> Path:
    """A tuned model with the base's general LM and a domain n-gram of its training text."""
    folder = build_model(tmp_path_factory.mktemp("tuned") / "model", "tiny", seed=0)
    _card().write(folder)
    return with_domain_lm(folder)


def with_domain_lm(folder: Path) -> Path:
    """A tuned model's lm/: the base's general LM and the domain n-gram of its training text
    (test_app_export's Share dialog uses it too)."""
    lm = folder / "lm"
    lm.mkdir()
    (lm / "char-4gram.arpa.gz").write_bytes(b"general")
    (lm / "domain-4gram.arpa.gz").write_bytes(b"patient text")
    config = {"type": "char-ngram", "file": "char-4gram.arpa.gz", "order": 4,
              "domain": {"file": "domain-4gram.arpa.gz", "order": 4, "sentences": 2}}  # fmt: skip
    (lm / "lm.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def test_the_push_later_command_keeps_every_option_that_changes_the_upload(tmp_path):
    """The offline message's command published a private adapter publicly, as a model."""
    job = tmp_path / "my job"
    build_model(job / "model", "tiny", seed=0)
    (job / "adapter").mkdir()
    (job / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    (job / "adapter" / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    plan = plan_upload(job, "me/clinic-lora", private=True, adapter=True, license="mit")
    with pytest.raises(HubError) as e:
        push(plan, "hf_x")  # HF_HUB_OFFLINE: the Hub cannot be reached
    assert e.value.code == "hub.offline"
    words = shlex.split(str(e.value).split("(", 1)[1].rsplit(")", 1)[0])
    assert words[:4] == ["tingxie-cli", "push", str(job), "me/clinic-lora"]
    assert {"--private", "--adapter"} <= set(words) and words[words.index("--license") + 1] == "mit"
    again = plan_upload(words[2], words[3], private=True, adapter=True, license="mit")
    assert (again.private, again.card, again.files) == (plan.private, plan.card, plan.files)


def test_the_domain_lm_of_the_training_text_is_left_out_unless_asked(tuned, capsys):
    plan = plan_upload(tuned, "me/clinic-zh")
    assert "lm/char-4gram.arpa.gz" in plan.files  # the base's general LM stays
    assert "lm/domain-4gram.arpa.gz" not in plan.files
    lm_json = json.loads(dict(plan.rewritten)["lm/lm.json"])
    assert "domain" not in lm_json and lm_json["file"] == "char-4gram.arpa.gz"
    assert "domain language model: not included" in plan.card
    assert cli(["push", str(tuned), "me/clinic-zh", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "domain-4gram.arpa.gz is left out" in out and "training transcripts" in out
    shared = plan_upload(tuned, "me/clinic-zh", domain_lm=True)
    assert "lm/domain-4gram.arpa.gz" in shared.files and "lm/lm.json" not in dict(shared.rewritten)
    assert "domain language model: included" in shared.card
    assert "--with-domain-lm" in shared.command()
    assert cli(["push", str(tuned), "me/clinic-zh", "--dry-run", "--with-domain-lm"]) == 0
    assert "is uploaded: it holds the training transcripts" in capsys.readouterr().out


def test_the_source_card_its_warning_and_license_are_kept(tmp_path):
    """The demo's "not for real voices" was dropped and apache-2.0 claimed for any model."""
    demo = plan_upload(DEMO, "me/demo")
    assert "not a model for real voices" in demo.card and "## Original model card" in demo.card
    assert "license:" not in demo.card.split("---")[1]  # the demo states none: none claimed
    assert "apache" not in demo.card.lower() and "- license: unknown" in demo.card
    assert any("license unknown" in note for note in demo.notes)
    mms = build_model(tmp_path / "mms", "tiny", seed=0)
    (mms / "README.md").write_text(
        "---\nlicense: cc-by-nc-4.0\nbase_model: facebook/mms-1b-all\n---\n# MMS\n\nCredit.\n",
        encoding="utf-8",
    )
    card = plan_upload(mms, "me/mms-zh").card
    assert "license: cc-by-nc-4.0" in card and "base_model: facebook/mms-1b-all" in card
    assert "Credit." in card
    chosen = plan_upload(mms, "me/mms-zh", license="mit")
    assert "license: mit" in chosen.card and "cc-by-nc" not in chosen.card.split("---")[1]


def test_the_license_of_a_tuned_model_is_its_local_base_models(tmp_path):
    base = build_model(tmp_path / "base", "tiny", seed=0)
    (base / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n# base\n", encoding="utf-8")
    tuned = build_model(tmp_path / "tuned", "tiny", seed=0)
    _card(base_model=str(base)).write(tuned)
    card = plan_upload(tuned, "me/t").card
    assert "license: cc-by-4.0" in card and "## Original model card" not in card


def test_fp32_parity_bounds_the_logits():
    """Tripled logits keep the greedy text but change every probability: no pass."""
    sound = Parity(7.3e-7, 1.0, 4, logit_range=47.0)
    tripled = Parity(1.23, 1.0, 4, logit_range=47.0)
    assert sound.passed("none") and not tripled.passed("none")
    assert "over 4.70e-02" in tripled.card_lines("none")[-1]
    assert "(bound 4.70e-02)" in sound.card_lines("none")[1]


def test_int8_parity_bounds_the_posteriors():
    """Measured on the demo model: a sound int8 export 0.002, a tripled-logit one 0.048."""
    assert Parity(0.35, 1.0, 4, logit_range=47.0, posterior_diff=0.002).passed("int8")
    tripled = Parity(50.8, 1.0, 4, logit_range=47.0, posterior_diff=0.048)
    assert not tripled.passed("int8")
    assert "posterior difference 0.0480, over 0.01" in tripled.card_lines("int8")[-1]


def test_an_onnx_export_with_scaled_logits_fails_its_check(tmp_path, monkeypatch, capsys):
    import torch

    import engine.export_onnx as ex

    real = ex._export_fp32

    class Tripled(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_values):
            return self.model(input_values).logits * 3.0

    base = build_model(tmp_path / "base", "tiny", seed=0)
    monkeypatch.setattr(ex, "_export_fp32", lambda model, path: real(Tripled(model).eval(), path))
    assert cli(["export", str(base), str(tmp_path / "out"), "--format", "onnx"]) == 1
    readme = (tmp_path / "out.parity-failed" / "README.md").read_text(encoding="utf-8")
    assert "parity: FAILED: max |logit difference|" in readme


def test_an_hf_export_writes_preprocessor_config_and_a_card(tmp_path):
    source = build_model(tmp_path / "src", "tiny", seed=0)
    (source / "README.md").unlink(missing_ok=True)
    assert cli(["export", str(source), str(tmp_path / "out"), "--format", "hf"]) == 0
    out = tmp_path / "out"
    assert (out / "preprocessor_config.json").is_file()
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "made with Tingxie" in readme and "`src`" in readme and str(tmp_path) not in readme
    assert "preprocessor_config.json" in plan_upload(out, "me/x").files


def test_an_int8_exports_card_says_its_cer_is_the_pytorch_models(tmp_path):
    folder = tmp_path / "onnx-int8"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"\0" * 16)
    _card(cer_rows=20).write(folder)
    (folder / "README.md").write_text(
        "# ONNX export made with Tingxie (听写)\n\n- precision: int8 weights (dynamic "
        "quantization)\n- parity: passed\n",
        encoding="utf-8",
    )
    card = plan_upload(folder, "me/x-int8").card
    cer = next(line for line in card.splitlines() if "held-out CER" in line)
    assert cer.endswith("(measured on the fp32 PyTorch model, before export)")


def test_a_home_relative_folder_is_shared(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    build_model(tmp_path / "models" / "m", "tiny", seed=0)
    plan = plan_upload("~/models/m", "me/x")
    assert plan.folder == tmp_path / "models" / "m"


def test_an_onnx_export_carries_its_sources_license_and_warning_to_the_hub(tmp_path):
    source = build_model(tmp_path / "src", "tiny", seed=0)
    (source / "README.md").write_text(
        "---\nlicense: cc-by-nc-4.0\n---\n# Demo\n\n**Not a model for real voices.**\n",
        encoding="utf-8",
    )
    assert cli(["export", str(source), str(tmp_path / "onnx"), "--format", "onnx"]) == 0
    readme = (tmp_path / "onnx" / "README.md").read_text(encoding="utf-8")
    assert "license: cc-by-nc-4.0" in readme and "## Source model card" in readme
    assert "- parity: passed" in readme
    card = plan_upload(tmp_path / "onnx", "me/demo-onnx").card
    assert "license: cc-by-nc-4.0" in card.split("---")[1] and "- parity: passed" in card
    assert "Not a model for real voices." in card


def test_a_damaged_lm_json_refuses_the_plan_rather_than_upload_the_transcripts(tuned, tmp_path):
    """lm.json unreadable: the domain n-gram could not be told apart and lm/* uploaded it,
    the training transcripts word for word, with nothing said (the dialog hid its box)."""
    import shutil

    from engine.tune.hub import share_defaults

    folder = shutil.copytree(tuned, tmp_path / "model")
    (folder / "lm" / "lm.json").write_text('{"type": "char-ngram", "domain": {', encoding="utf-8")
    for look in (lambda: plan_upload(folder, "me/clinic"), lambda: share_defaults(folder)):
        with pytest.raises(HubError) as e:
            look()
        assert e.value.code == "hub.lm_config_unreadable" and "lm.json" in str(e.value)


def test_front_matter_that_is_no_yaml_keeps_the_card_text(tmp_path):
    """`license: [` raised yaml's ParserError through ModelCard: the Share dialog did not open."""
    from engine.tune.formats import source_card
    from engine.tune.hub import share_defaults

    readme = tmp_path / "README.md"
    readme.write_text("---\nlicense: [\n---\nDo not use for diagnosis.\n", encoding="utf-8")
    assert source_card(readme) == ({}, "---\nlicense: [\n---\nDo not use for diagnosis.")
    assert share_defaults(tmp_path).license is None
