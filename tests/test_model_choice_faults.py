"""Choosing a model by what people type or paste: a Hub page's address, a missing folder, a
name no file system holds, the help on what "auto" runs, the cache a missing model belongs in."""

from __future__ import annotations

import pytest

from engine.cli import main
from engine.model import ModelLoadError, looks_like_path, resolve_model
from engine.registry import family_of, is_onnx_export, kind_on_disk, model_source

# A pasted sentence: 100 CJK characters are 300 bytes, over the 255 a file name may have.
_SENTENCE = "会" * 100


def _transcribe(tmp_path, model: str) -> int:
    (tmp_path / "x.wav").touch()  # a missing input is told without loading a model
    return main(["transcribe", str(tmp_path / "x.wav"), "--model", model])


# ---- a Hub page's address is its Hub id ----------------------------------------------------

_PAGES = {
    "https://huggingface.co/jonatasgrosman/wav2vec2-large-xlsr-53-chinese-zh-cn": (
        "jonatasgrosman/wav2vec2-large-xlsr-53-chinese-zh-cn"
    ),
    "https://huggingface.co/owner/name/tree/main": "owner/name",
    "https://huggingface.co/owner/name/blob/main/config.json": "owner/name",
    "http://www.huggingface.co/owner/name/": "owner/name",
    "huggingface.co/owner/name": "owner/name",
    "https://hf-mirror.com/owner/name?library=transformers": "owner/name",
    "https://hf.co/owner/name#model-card": "owner/name",
    "owner/name/": "owner/name",  # a trailing slash separates nothing
}


@pytest.mark.parametrize("typed", list(_PAGES))
def test_a_hub_page_address_reads_as_its_hub_id(typed, tmp_path, monkeypatch):
    """Before: `model folder https:/huggingface.co/… does not exist` (a folder, mangled)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError) as e:
        resolve_model(typed, local_files_only=True)
    assert e.value.code == "model.not_cached" and e.value.params["source"] == _PAGES[typed]
    assert not looks_like_path(typed)
    assert model_source(typed) == _PAGES[typed]


def test_a_whisper_hub_page_loads_as_whisper():
    from engine.loader import load_model

    with pytest.raises(ModelLoadError) as e:
        load_model("https://huggingface.co/Systran/faster-whisper-small/tree/main")
    assert e.value.code == "model.whisper_not_cached"
    assert e.value.params["source"] == "Systran/faster-whisper-small"


@pytest.mark.parametrize(
    "typed",
    [
        "https://example.com/owner/name",
        "https://github.com/owner/name",
        "https://huggingface.co/datasets/owner/name",
        "https://huggingface.co/spaces/owner/name",
    ],
)
def test_another_web_address_is_refused_as_one(typed):
    with pytest.raises(ModelLoadError) as e:
        resolve_model(typed, local_files_only=True)
    assert e.value.code == "model.web_address"
    assert typed in str(e.value) and "owner/name" in str(e.value)


def test_the_cli_reads_a_hub_page_and_exits_2(tmp_path, capsys):
    url = "https://huggingface.co/nobody-tingxie/no-such-model/tree/main"
    assert _transcribe(tmp_path, url) == 2
    err = capsys.readouterr().err
    assert "'nobody-tingxie/no-such-model' is not in the Hugging Face cache" in err


# ---- a path that does not exist is a missing folder; owner/name a Hub id -------------------


@pytest.mark.parametrize(
    "typed", ["./mine", "../mine", "~/mine", "/no/such/mine", "models/a/mine", r"C:\mine", "C:/m"]
)
def test_a_missing_path_is_a_missing_folder(typed, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert looks_like_path(typed)
    with pytest.raises(ModelLoadError) as e:
        resolve_model(typed, local_files_only=True)
    assert e.value.code == "model.folder_missing"


@pytest.mark.parametrize("typed", ["owner/name", "name"])
def test_a_missing_hub_shaped_name_stays_a_hub_id(typed, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert not looks_like_path(typed)


# ---- a name no file system holds ------------------------------------------------------------


@pytest.mark.parametrize("typed", ["a" * 300, _SENTENCE, "~nobody-tingxie-no-such-user/m"])
def test_a_name_no_folder_can_have_is_an_error_not_a_traceback(typed, tmp_path, capsys):
    """Before: OSError [Errno 36] File name too long (RuntimeError for an unknown ~user) from
    family_of's Path.is_dir, a traceback and exit 1."""
    assert family_of(typed) is None and not is_onnx_export(typed)
    with pytest.raises(ModelLoadError) as e:
        resolve_model(typed, local_files_only=True)
    assert e.value.code in ("model.invalid_id", "model.folder_missing")
    assert _transcribe(tmp_path, typed) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert kind_on_disk(typed) is None


def test_a_long_path_is_a_missing_folder(tmp_path):
    with pytest.raises(ModelLoadError) as e:
        resolve_model(str(tmp_path / ("a" * 300) / "m"))
    assert e.value.code == "model.folder_missing"


def test_the_dialog_keeps_a_long_name_and_reads_a_hub_page(qtbot):
    """Before: Path.is_dir raised in source(), on the UI thread: nothing loaded, nothing said."""
    from app.modeldialog import ModelDialog

    dialog = ModelDialog(_SENTENCE)
    qtbot.addWidget(dialog)
    assert dialog.source() == _SENTENCE  # the load then says what is wrong with it
    dialog.edit.setText(" https://huggingface.co/owner/name/tree/main ")
    assert dialog.source() == "owner/name"
    dialog.edit.setText("https://example.com/owner/name")  # refused by the load, in its words
    assert dialog.source() == "https://example.com/owner/name"


# ---- the help says what auto runs ----------------------------------------------------------


def test_the_help_says_auto_runs_a_large_checkpoint_as_its_int8_copy(capsys):
    """Before: "auto: bf16 where the CPU/GPU runs it natively, else fp32 (CPU)", while a large
    checkpoint on such a CPU ran on its int8 ONNX copy."""
    from engine.model import CONVERT_MIN_BYTES

    for command in ("transcribe", "evaluate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        help_text = " ".join(capsys.readouterr().out.split())
        assert "int8" in help_text and f"{CONVERT_MIN_BYTES // 1_000_000} MB" in help_text
        assert "--backend torch" in help_text, command


def test_each_way_to_keep_fp32_is_in_the_transcribe_help(capsys):
    with pytest.raises(SystemExit):
        main(["transcribe", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    precision = help_text.rsplit("--precision {auto,fp32,bf16,fp16}", 1)[1]
    precision = precision.split("--batch-size", 1)[0]
    assert "int8" in precision and "fp32" in precision and "--backend torch" in precision


# ---- the cache a missing model belongs in ---------------------------------------------------


def test_not_cached_names_the_cache_in_use(tmp_path, monkeypatch):
    """Before: "copy the Hugging Face cache (~/.cache/huggingface) here", with HF_HOME
    elsewhere."""
    import huggingface_hub.constants

    from app.errors import error_text

    cache = tmp_path / "hf" / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    with pytest.raises(ModelLoadError) as e:
        resolve_model("nobody-tingxie/no-such-model", local_files_only=True)
    assert e.value.params["cache"] == str(cache)
    assert str(cache) in str(e.value) and "~/.cache" not in str(e.value)
    for language in ("zh", "en"):
        monkeypatch.setattr("app.i18n._current", language)
        text = error_text(e.value)
        assert str(cache) in text and "~/.cache" not in text, language
        assert ("本机正在使用的缓存" in text) == (language == "zh")


def test_an_uncached_whisper_names_the_cache_in_use(tmp_path, monkeypatch):
    """Before: Whisper's message still said "copy the Hugging Face cache (~/.cache/huggingface)
    here"."""
    import huggingface_hub.constants

    from app.errors import error_text
    from engine import loader

    cache = tmp_path / "hf" / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    with pytest.raises(ModelLoadError) as e:
        loader.load_model("Systran/faster-whisper-tiny-not-cached")
    assert e.value.code == "model.whisper_not_cached" and e.value.params["cache"] == str(cache)
    for language in ("zh", "en"):
        monkeypatch.setattr("app.i18n._current", language)
        text = error_text(e.value)
        assert str(cache) in text and "~/.cache" not in text, language
