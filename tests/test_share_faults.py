"""Sharing and embedding faults: a push with no connection, local paths in uploaded files, a
Hub base's language model lost in tuning, embeddings written over files already there, and a
tuned job's model/ folder whose adapter sits beside it. No test touches the network."""

from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from app.worker import EmbedRequest
from engine.audio import write_wav
from engine.cli import main as cli
from engine.testmodels import build_model
from engine.tune.export import CARD_FILE, ModelCard, save_merged
from engine.tune.hub import HubError, plan_upload, push

LOCAL = "/home/wang"


def _card(base: str, data: str = "corrections/clinic") -> ModelCard:
    return ModelCard(base_model=base, method="lora", steps=200, train_examples=150,
                     train_seconds=600.0, heldout_examples=16, cer_before=0.42, cer_after=0.21,
                     data=data)  # fmt: skip


@pytest.fixture
def job(tmp_path) -> Path:
    """A LoRA job's output folder whose card and adapter name local paths of this machine."""
    out = tmp_path / "job"
    model = build_model(out / "model", "tiny", seed=0)
    card = _card(f"{LOCAL}/models/xlsr-base", f"{LOCAL}/病历/clinic-patients.tsv")
    card.write(model)
    adapter = out / "adapter"
    adapter.mkdir()
    config = {"peft_type": "LORA", "r": 16, "base_model_name_or_path": f"{LOCAL}/models/xlsr-base"}
    (adapter / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    (adapter / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    card.write(adapter)
    return out


class _FakeApi:
    """HfApi as far as `push` calls it; `fail` is raised where the network would be."""

    sent: ClassVar[list] = []
    fail: ClassVar[BaseException | None] = None

    def __init__(self, token: str | None = None) -> None:
        pass

    def create_repo(self, repo_id: str, **kwargs: object) -> str:
        if _FakeApi.fail is not None:
            raise _FakeApi.fail
        return f"https://huggingface.co/{repo_id}"

    def create_commit(self, repo_id: str, operations: list, **kwargs: object) -> None:
        _FakeApi.sent = operations


@pytest.fixture
def api(monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", _FakeApi)
    monkeypatch.setattr(_FakeApi, "sent", [])
    monkeypatch.setattr(_FakeApi, "fail", None)
    monkeypatch.setenv("HF_TOKEN", "hf_fake_token")
    return _FakeApi


def _connection_refused() -> BaseException:
    """What the installed Hub client raises when nothing answers (no network, a firewall):
    httpx's ConnectError, which is no OSError, where the client speaks httpx."""
    for name in ("httpx2", "httpx"):
        if importlib.util.find_spec(name) is not None:
            return importlib.import_module(name).ConnectError("[Errno 111] Connection refused")
    return ConnectionRefusedError(111, "Connection refused")


# -- 1. a push with no connection ----------------------------------------------------------


def test_a_push_with_no_connection_is_the_offline_error(job, api, capsys):
    api.fail = _connection_refused()
    with pytest.raises(HubError) as e:
        push(plan_upload(job, "me/clinic-zh"), "hf_fake_token")
    assert e.value.code == "hub.offline"
    assert cli(["push", str(job), "me/clinic-zh"]) == 1  # was a traceback
    err = capsys.readouterr().err
    assert "cannot be reached" in err and str(job / "model") in err


def test_the_app_says_the_hub_cannot_be_reached_not_errno(job, api):
    from app.errors import error_text
    from app.i18n import language, set_language
    from app.worker import Engine, EngineWorker

    api.fail = _connection_refused()
    worker, got = EngineWorker(Engine()), []
    worker.push_failed.connect(got.append)
    worker.push_model(plan_upload(job, "me/clinic-zh"))
    assert [getattr(e, "code", e) for e in got] == ["hub.offline"]
    before = language()
    try:
        set_language("en")
        text = error_text(got[0])
        assert "cannot be reached" in text and "Errno" not in text
        assert "tingxie-cli" not in text  # the app names its own menu, not a command
        set_language("zh")
        assert "无法连接" in error_text(got[0])
    finally:
        set_language(before)


# -- 2. local paths in uploaded files --------------------------------------------------------


def _uploaded(operations: list) -> dict[str, bytes]:
    return {
        op.path_in_repo: op.path_or_fileobj
        if isinstance(op.path_or_fileobj, bytes)
        else Path(op.path_or_fileobj).read_bytes()
        for op in operations
    }


@pytest.mark.parametrize("adapter", [False, True])
def test_no_uploaded_file_names_a_local_path(job, api, adapter):
    plan = plan_upload(job, "wang/clinic-zh", adapter=adapter)
    assert CARD_FILE in plan.files
    assert CARD_FILE in dict(plan.rewritten)  # listed in the plan as rewritten
    push(plan, "hf_fake_token")
    sent = _uploaded(api.sent)
    assert set(sent) == {*plan.files, "README.md"}
    for rel, content in sent.items():
        assert LOCAL.encode() not in content, rel
    card = json.loads(sent[CARD_FILE])
    assert card["base_model"] == "xlsr-base" and card["data"] == "clinic-patients.tsv"
    assert card["steps"] == 200  # the rest as it was
    if adapter:
        config = json.loads(sent["adapter_config.json"])
        assert config["base_model_name_or_path"] == "xlsr-base" and config["r"] == 16
    # the local files stay as they are: the adapter loads its base from there
    assert LOCAL in (plan.folder / CARD_FILE).read_text(encoding="utf-8")


def test_the_share_dialog_says_which_files_are_rewritten(qtbot, job):
    from app.export.share import ShareDialog
    from app.i18n import tr
    from app.worker import Engine, EngineWorker, WorkerHandle

    dialog = ShareDialog(WorkerHandle(EngineWorker(Engine())), str(job))
    qtbot.addWidget(dialog)
    dialog.repo.setText("wang/clinic-zh")
    dialog.show_plan()
    shown = dialog.plan_view.toPlainText()
    assert f"  {CARD_FILE} {tr('share.rewritten')}" in shown.splitlines()
    assert "  config.json" in shown.splitlines() and LOCAL not in shown


def test_a_hub_base_keeps_its_id_in_the_uploaded_card(tmp_path, api):
    model = build_model(tmp_path / "m", "tiny", seed=0)
    _card("someone/xlsr-zh", f"{LOCAL}/data.tsv").write(model)
    plan = plan_upload(model, "wang/clinic-zh")
    card = json.loads(dict(plan.rewritten)[CARD_FILE])
    assert card["base_model"] == "someone/xlsr-zh" and card["data"] == "data.tsv"


def test_the_dry_run_says_which_files_are_rewritten(job, capsys):
    assert cli(["push", str(job), "wang/clinic-zh", "--dry-run"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if CARD_FILE in x)
    assert "local paths" in line and LOCAL not in out


# -- 3. a Hub base's language model ---------------------------------------------------------


def test_a_model_tuned_from_a_hub_id_keeps_the_bases_language_model(
    tiny_with_lm, tmp_path, monkeypatch
):
    from huggingface_hub import constants
    from transformers import AutoModelForCTC, AutoProcessor

    cache = tmp_path / "hub"
    repo = cache / "models--someone--tiny-lm"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_with_lm, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40, encoding="utf-8")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.chdir(tmp_path)  # nothing named someone/tiny-lm here
    model = AutoModelForCTC.from_pretrained(tiny_with_lm)
    processor = AutoProcessor.from_pretrained(tiny_with_lm)
    vocab = json.loads((tiny_with_lm / "vocab.json").read_text(encoding="utf-8"))
    text = ["".join(t for t in vocab if len(t) == 1 and t != "|")[:12]]
    out = save_merged(
        model, processor, tmp_path / "tuned" / "model", _card("someone/tiny-lm"), text
    )
    local = save_merged(
        model, processor, tmp_path / "local" / "model", _card(str(tiny_with_lm)), text
    )
    assert (out / "lm").is_dir()  # was missing: the base looked for at ./someone/tiny-lm/lm
    assert sorted(p.name for p in (out / "lm").iterdir()) == sorted(
        p.name for p in (local / "lm").iterdir()
    )


def test_a_base_that_is_neither_a_folder_nor_cached_has_no_language_model(
    tiny_model_dir, tmp_path, monkeypatch
):
    from huggingface_hub import constants
    from transformers import AutoModelForCTC, AutoProcessor

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    model = AutoModelForCTC.from_pretrained(tiny_model_dir)
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    out = save_merged(model, processor, tmp_path / "m", _card("someone/not-here"), ["天地"])
    assert (out / "model.safetensors").is_file() and not (out / "lm").exists()


# -- 4. embeddings written over files already there -----------------------------------------


def _signal(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.1 * rng.standard_normal(int(seconds * 16_000))).astype(np.float32)


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    from engine.model import LoadOptions, load_model

    return load_model(tiny_model_dir, LoadOptions(device="cpu", backend="torch"))


@pytest.mark.parametrize("fmt", ["npy", "parquet"])
def test_write_embedding_never_replaces_a_file(loaded, tmp_path, fmt):
    from engine.embed import EmbedOptions, embed, write_embedding

    write_wav(tmp_path / "talk.wav", _signal(1.0))
    result = embed(loaded, tmp_path / "talk.wav", EmbedOptions(layer=1))
    out = tmp_path / "vec"
    out.mkdir()
    own = out / f"talk.{fmt}"
    own.write_bytes(b"the person's own file")
    path = write_embedding(result, out, fmt)
    assert path == out / f"talk-2.{fmt}"
    assert own.read_bytes() == b"the person's own file"
    assert write_embedding(result, out, fmt) == out / f"talk-3.{fmt}"  # counted on disk
    assert write_embedding(result, out, fmt, overwrite=True) == own
    assert own.read_bytes() != b"the person's own file"


def test_a_times_file_already_there_is_kept_too(loaded, tmp_path):
    from engine.embed import EmbedOptions, embed, write_embedding

    write_wav(tmp_path / "talk.wav", _signal(1.0))
    result = embed(loaded, tmp_path / "talk.wav", EmbedOptions(layer=1))
    np.save(tmp_path / "talk.times.npy", np.arange(3.0))
    assert write_embedding(result, tmp_path, "npy") == tmp_path / "talk-2.npy"
    assert np.load(tmp_path / "talk.times.npy").shape == (3,)
    assert not (tmp_path / "talk.npy").exists()  # a pair is written whole under one name
    assert len(np.load(tmp_path / "talk-2.times.npy")) == len(result.vectors)


def test_a_failed_write_leaves_no_file_behind(loaded, tmp_path, monkeypatch):
    """A full disk halfway: no truncated talk.npy (or a stray temporary file) is left."""
    from engine.embed import EmbedOptions, embed, write_embedding

    write_wav(tmp_path / "talk.wav", _signal(1.0))
    result = embed(loaded, tmp_path / "talk.wav", EmbedOptions(layer=1))
    out = tmp_path / "vec"
    out.mkdir()
    real_save = np.save

    def full_disk(file, array, *args, **kwargs):
        if len(array) == len(result.vectors) and array.ndim == 2 and array.shape[1] > 2:
            if hasattr(file, "write"):
                file.write(b"\x93NUMPY half")
            else:
                Path(file).write_bytes(b"\x93NUMPY half")
            raise OSError(28, "No space left on device")
        return real_save(file, array, *args, **kwargs)

    monkeypatch.setattr(np, "save", full_disk)
    with pytest.raises(OSError):
        write_embedding(result, out, "npy")
    assert list(out.iterdir()) == []


def test_the_cli_keeps_a_file_already_there(tiny_model_dir, tmp_path, capsys):
    write_wav(tmp_path / "talk.wav", _signal(1.0))
    out = tmp_path / "vec"
    out.mkdir()
    np.save(out / "talk.npy", np.arange(5.0))  # the person's own array
    args = ["embed", str(tmp_path / "talk.wav"), "--model", str(tiny_model_dir), "--layer", "1",
            "--out", str(out), "--device", "cpu"]  # fmt: skip
    assert cli(args) == 0
    assert capsys.readouterr().out.rstrip().endswith(f"-> {out / 'talk-2.npy'}")
    assert np.load(out / "talk.npy").shape == (5,)
    assert cli([*args, "--overwrite"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(f"-> {out / 'talk.npy'}")
    assert np.load(out / "talk.npy").ndim == 2


def test_the_app_export_keeps_a_file_already_there(loaded, tmp_path):
    from app.worker import Engine, EngineWorker

    write_wav(tmp_path / "interview.wav", _signal(1.0))
    np.save(tmp_path / "interview.npy", np.arange(5.0))
    worker = EngineWorker(Engine())
    worker.model = loaded
    done, failed = [], []
    worker.embed_done.connect(done.append)
    worker.embed_failed.connect(failed.append)
    worker.embed_file(EmbedRequest(str(tmp_path / "interview.wav"), str(tmp_path), layer=1))
    assert failed == [] and done == [str(tmp_path / "interview-2.npy")]
    assert np.load(tmp_path / "interview.npy").shape == (5,)


def test_the_embeddings_dialog_says_the_file_there_is_kept(qtbot, loaded, tmp_path):
    from app.export.embeddings import EmbedDialog
    from app.i18n import tr
    from app.worker import Engine, EngineWorker, WorkerHandle

    write_wav(tmp_path / "clip.wav", _signal(1.0))
    np.save(tmp_path / "clip.npy", np.arange(5.0))
    worker = EngineWorker(Engine())
    worker.model = loaded
    dialog = EmbedDialog(WorkerHandle(worker), str(tmp_path / "clip.wav"))
    qtbot.addWidget(dialog)
    worker.embed_file(EmbedRequest(str(tmp_path / "clip.wav"), str(tmp_path), layer=1))
    path = str(tmp_path / "clip-2.npy")
    assert dialog.status.text() == tr("embed.done_kept", path=path, stem="clip")
    assert np.load(tmp_path / "clip.npy").shape == (5,)


# -- 5. the adapter of a tuned job's model/ folder ------------------------------------------


def test_a_jobs_model_folder_shares_the_adapter_beside_it(job):
    plan = plan_upload(job / "model", "me/clinic-zh", adapter=True)
    assert plan.folder == job / "adapter" and "adapter_config.json" in plan.files


def test_a_folder_holding_an_adapter_is_shared_as_it_is(job):
    plan = plan_upload(job / "adapter", "me/clinic-zh", adapter=True)
    assert plan.folder == job / "adapter"


def test_no_adapter_says_what_to_do_in_the_app_without_a_cli_flag(job):
    from app.errors import error_text
    from app.i18n import language, set_language

    shutil.rmtree(job / "adapter")  # a full tuning job: its model only
    with pytest.raises(HubError) as e:
        plan_upload(job / "model", "me/clinic-zh", adapter=True)
    assert e.value.code == "hub.no_adapter" and "--adapter" in str(e.value)  # the CLI's words
    before = language()
    try:
        set_language("en")
        text = error_text(e.value)
        assert str(job / "model") in text and "--adapter" not in text
        assert "Share the LoRA adapter only" in text
        set_language("zh")
        assert "只分享 LoRA 适配器" in error_text(e.value)
    finally:
        set_language(before)
