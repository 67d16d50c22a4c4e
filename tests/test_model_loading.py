from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

from engine.model import (
    DEFAULT_MODEL,
    LoadOptions,
    ModelLoadError,
    load_model,
    looks_like_path,
    pick_attention,
    resolve_model,
)
from engine.registry import FAMILIES, WHISPER, UnsupportedModelError, family_for, family_of
from engine.testmodels import build_model


def test_local_folder_loads_with_vocab_and_blank(tiny_model_dir):
    m = load_model(tiny_model_dir, LoadOptions(precision="fp32"))
    assert m.vocab[m.blank_id] == "<pad>"
    assert "的" in m.vocab
    assert m.frame_seconds == pytest.approx(0.02)
    assert m.dtype == torch.float32
    assert m.attention in ("sdpa", "eager")
    assert not m.model.training


def test_hub_id_offline_gives_clear_error():
    with pytest.raises(ModelLoadError) as e:
        load_model(DEFAULT_MODEL, LoadOptions(local_files_only=True))
    msg = str(e.value)
    assert DEFAULT_MODEL in msg and "local model folder" in msg


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "remove, named",
    [("model.safetensors", "model.safetensors"), ("vocab.json", "vocab.json")],
)
def test_folder_missing_files_says_which(tiny_model_dir, tmp_path, remove, named):
    copy = tmp_path / "m"
    shutil.copytree(tiny_model_dir, copy)
    (copy / remove).unlink()
    with pytest.raises(ModelLoadError, match=named):
        load_model(copy)


@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_every_registered_family_loads(tmp_path, model_type):
    d = build_model(tmp_path / model_type, "tiny", model_type=model_type)
    m = load_model(d, LoadOptions(precision="fp32"))
    assert m.family.model_type == model_type
    out = m.model(torch.zeros(1, 16000)).logits
    assert out.shape[-1] == len(m.vocab)


def _copies(cache: Path) -> list[Path]:
    """The converted copies in a weights cache (folders; their lock files left out)."""
    return [p for p in cache.iterdir() if p.is_dir()]


def _spy_children(monkeypatch) -> list[list[str]]:
    """The command lines of the child processes started, in order (they still run)."""
    import subprocess

    children: list[list[str]] = []
    real_popen = subprocess.Popen
    monkeypatch.setattr(
        subprocess, "Popen", lambda cmd, **kw: children.append(cmd) or real_popen(cmd, **kw)
    )
    return children


def _spy_loads(monkeypatch) -> list[tuple[str, Path]]:
    """Where load_model takes its weights from, in order: ("exact", folder) for the meta-device
    path, ("from_pretrained", folder) for transformers' loader."""
    import transformers

    import engine.model as model_module

    loads: list[tuple[str, Path]] = []
    real, exact = transformers.AutoModelForCTC.from_pretrained.__func__, model_module._load_exact

    def spy(cls, path, *args, **kwargs):
        loads.append(("from_pretrained", Path(path)))
        return real(cls, path, *args, **kwargs)

    def spy_exact(folder, *args):
        model = exact(folder, *args)
        if model is not None:
            loads.append(("exact", Path(folder)))
        return model

    monkeypatch.setattr(transformers.AutoModelForCTC, "from_pretrained", classmethod(spy))
    monkeypatch.setattr(model_module, "_load_exact", spy_exact)
    return loads


@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_a_checkpoint_holding_exactly_the_models_weights_loads_without_from_pretrained(
    tmp_path, model_type, monkeypatch
):
    """The fast path (the model built on the meta device, the file's tensors assigned) gives
    what from_pretrained gives; a file with other names (the legacy weight-norm keys), a
    tensor fewer (from_pretrained initialises it) or another dtype than asked for goes through
    from_pretrained, as before."""
    import transformers
    from safetensors.torch import load_file, save_file

    import engine.model as model_module

    folder = build_model(tmp_path / "m", "tiny", model_type=model_type)
    reference = transformers.AutoModelForCTC.from_pretrained(folder).eval()
    x = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        want = reference(x).logits
    loads = _spy_loads(monkeypatch)

    def logits(precision="fp32"):
        model = load_model(folder, LoadOptions(precision=precision, device="cpu")).model
        with torch.inference_mode():
            return model(x).logits

    torch.testing.assert_close(logits(), want)
    assert loads == [("exact", folder)]
    assert model_module._load_exact(folder, torch.bfloat16, "eager") is None  # stored in fp32

    weights = folder / "model.safetensors"
    legacy = {
        k.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        ): v
        for k, v in load_file(weights).items()
        if not k.endswith("masked_spec_embed")  # used only in training
    }
    assert set(legacy) != set(load_file(weights))
    save_file(legacy, weights, metadata={"format": "pt"})
    torch.testing.assert_close(logits(), want)
    assert loads[1:] == [("from_pretrained", folder)]


def test_weight_norm_is_baked_without_changing_outputs(tiny_model_dir):
    from torch.nn.utils import parametrize
    from transformers import AutoModelForCTC

    reference = AutoModelForCTC.from_pretrained(tiny_model_dir).eval()
    assert any(parametrize.is_parametrized(m) for m in reference.modules())
    loaded = load_model(tiny_model_dir, LoadOptions(precision="fp32", device="cpu")).model
    assert not any(parametrize.is_parametrized(m) for m in loaded.modules())
    x = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x).logits, reference(x).logits)


def test_a_checkpoint_without_a_ctc_head_is_refused(tiny_model_dir, tmp_path):
    """A pretrained base checkpoint (no lm_head in its weights): transformers initialised a
    head at random, and the transcript was gibberish with exit status 0."""
    from safetensors.torch import load_file, save_file

    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    weights = load_file(base / "model.safetensors")
    kept = {k: v for k, v in weights.items() if not k.startswith("lm_head.")}
    assert len(kept) < len(weights)
    save_file(kept, base / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError) as e:
        load_model(base, LoadOptions(precision="fp32"))
    assert e.value.code == "model.no_ctc_head"
    assert str(base) in str(e.value) and "fine-tune" in str(e.value)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


# What breaks, how, the file the message names, and what it says to do.
BROKEN = {
    "cut-short weights": ("model.safetensors", _truncate, "download or copy the model again"),
    "empty weights": ("model.safetensors", lambda p: p.write_bytes(b""), "download or copy"),
    "config a list": ("config.json", lambda p: p.write_text("[]"), "re-copy the checkpoint"),
    "vocab a list": ("vocab.json", lambda p: p.write_text('["a", "b"]'), "re-copy"),
    "config not UTF-8": ("config.json", lambda p: p.write_bytes(b"\xff\xfe{"), "re-copy"),
    "weights' header a list": ("model.safetensors", lambda p: _header(p, b"[1,2]"), "copy"),
    "weights' header of numbers": ("model.safetensors", lambda p: _header(p, b'{"a": 1}'), "copy"),
    "vocab ids not numbers": ("vocab.json", lambda p: p.write_text('{"a": "x"}'), "re-copy"),
}


def _header(path: Path, header: bytes) -> None:
    path.write_bytes(len(header).to_bytes(8, "little") + header)


def test_an_onnx_export_asked_on_pytorch_says_what_it_is(tiny_model_dir, tmp_path):
    """It was transformers' "no file named model.safetensors, or pytorch_model.bin"."""
    folder = tmp_path / "export"
    shutil.copytree(tiny_model_dir, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    (folder / "model.onnx").write_bytes(b"onnx")
    with pytest.raises(ModelLoadError) as e:
        load_model(folder, LoadOptions(backend="torch"))
    assert e.value.code == "model.onnx_only" and "ONNX Runtime" in str(e.value)


def test_a_file_chosen_as_the_model_folder_is_called_a_file(tmp_path):
    """It was said not to exist ("model folder …/audio.wav does not exist")."""
    (tmp_path / "audio.wav").write_bytes(b"RIFF")
    with pytest.raises(ModelLoadError) as e:
        load_model(tmp_path / "audio.wav")
    assert e.value.code == "model.is_file" and str(tmp_path / "audio.wav") in str(e.value)


def test_a_file_inside_a_model_folder_names_the_folder_to_choose(
    tiny_model_dir, tmp_path, monkeypatch
):
    """config.json or model.safetensors, picked in a file manager for its folder, was only
    "is a file; choose a checkpoint folder" (relative with one slash, as a Hub id's shape)."""
    shutil.copytree(tiny_model_dir, tmp_path / "mine")
    for chosen in (tmp_path / "mine" / "config.json", tmp_path / "mine" / "model.safetensors"):
        with pytest.raises(ModelLoadError) as e:
            load_model(chosen)
        assert e.value.code == "model.file_in_folder", chosen
        assert f"choose {tmp_path / 'mine'}" in str(e.value)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError) as e:
        resolve_model("mine/config.json")
    assert e.value.code == "model.file_in_folder" and e.value.params["folder"] == Path("mine")


def test_a_file_inside_a_whisper_folder_is_no_whisper_hub_id(tmp_path, monkeypatch):
    """whisper-base/model.bin, typed relative for its folder, has a Hub id's shape and says
    Whisper: it was sent to a Hub download ("not cached") instead of naming the folder."""
    (tmp_path / "whisper-base").mkdir()
    (tmp_path / "whisper-base" / "model.bin").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert family_of("whisper-base/model.bin") is None
    assert family_of("Systran/faster-whisper-small") is WHISPER  # no such file: a Hub id
    with pytest.raises(ModelLoadError) as e:
        resolve_model("whisper-base/model.bin")
    assert e.value.code == "model.file_in_folder"


def test_an_existing_folder_shaped_like_a_hub_id_is_a_folder(tiny_model_dir, tmp_path, monkeypatch):
    """`models/mine` (owner/name in shape) that exists here is the folder, as transformers'
    from_pretrained reads it; with no such folder it stays a Hub id."""
    shutil.copytree(tiny_model_dir, tmp_path / "models" / "mine")
    monkeypatch.chdir(tmp_path)
    assert looks_like_path("models/mine") and not looks_like_path("models/theirs")
    assert resolve_model("models/mine") == Path("models/mine")
    with pytest.raises(ModelLoadError) as e:
        resolve_model("models/theirs", local_files_only=True)
    assert e.value.code == "model.not_cached"


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_model_file_is_named_with_what_to_do(tiny_model_dir, tmp_path, case):
    """Before: a SafetensorError or AttributeError traceback from deep inside transformers."""
    name, damage, advice = BROKEN[case]
    copy = tmp_path / "m"
    shutil.copytree(tiny_model_dir, copy)
    damage(copy / name)
    with pytest.raises(ModelLoadError) as e:
        load_model(copy, LoadOptions(precision="fp32"))
    message = str(e.value)
    assert str(copy / name) in message and advice in message and "\n" not in message


def test_unknown_family_rejected():
    with pytest.raises(UnsupportedModelError, match="wav2vec2"):
        family_for("whisper")


def test_sdpa_refused_for_wavlm():
    with pytest.raises(ModelLoadError, match="eager"):
        pick_attention("sdpa", FAMILIES["wavlm"], torch.device("cpu"), torch.float32)


def test_bad_option_value_named():
    with pytest.raises(ValueError, match="precision"):
        LoadOptions(precision="int3")  # type: ignore[arg-type]


def test_a_hub_download_fetches_the_models_language_model_and_no_pickle(
    monkeypatch, tiny_model_dir
):
    """The files a Hub download asks for, filtered as huggingface_hub filters a repository's
    listing: the model's lm/ folder (its n-gram and lm.json) comes with the weights; pickled
    weights and a pyctcdecode language_model/ (not read; can be gigabytes) do not."""
    import huggingface_hub
    from huggingface_hub.utils import filter_repo_objects

    from engine.model import resolve_model

    listing = ["config.json", "model.safetensors", "vocab.json", "preprocessor_config.json",
               "README.md", "pytorch_model.bin", "lm/lm.json", "lm/char-4gram.arpa.gz",
               "language_model/5gram.bin", "language_model/unigrams.txt",
               "language_model/attrs.json"]  # fmt: skip
    asked = {}

    def fake_download(repo_id, **kw):
        asked["files"] = set(
            filter_repo_objects(
                listing, allow_patterns=kw["allow_patterns"], ignore_patterns=kw["ignore_patterns"]
            )
        )
        return str(tiny_model_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    resolve_model("someone/some-model")
    model_files = {"config.json", "model.safetensors", "vocab.json", "README.md",
                   "preprocessor_config.json"}  # fmt: skip
    assert asked["files"] == model_files | {"lm/lm.json", "lm/char-4gram.arpa.gz"}


def test_a_large_fp32_checkpoint_run_in_bf16_is_converted_once_and_loaded_from_the_cache(
    tiny_model_dir, tmp_path, monkeypatch
):
    """The conversion (engine.model: large fp32 safetensors run in a half precision on a CPU)
    is made on the first load in a child process (engine.convert), so that even the first load
    maps the converted copy and never holds the fp32 weights here; the next load uses it
    without a child (same outputs); a changed checkpoint is converted again; fp32 is not
    converted; a cache that cannot be written costs nothing but the conversion, and a child
    that fails leaves the conversion to this process. The size threshold is lowered so the
    tiny model counts as large."""

    import numpy as np

    import engine.model as model_module
    from engine.model import _stored_dtype
    from engine.transcribe import Transcriber

    monkeypatch.setattr(model_module, "CONVERT_MIN_BYTES", 0)
    cache = tmp_path / "weights"
    monkeypatch.setenv("TINGXIE_WEIGHTS_CACHE", str(cache))
    source = tmp_path / "model"
    shutil.copytree(tiny_model_dir, source)
    loads = _spy_loads(monkeypatch)
    children = _spy_children(monkeypatch)
    audio = np.random.default_rng(0).normal(scale=0.1, size=16_000).astype(np.float32)

    def logits(precision="bf16"):
        m = load_model(source, LoadOptions(device="cpu", precision=precision))
        return m, Transcriber(m).logits([audio])[0]

    first, out1 = logits()
    (converted,) = _copies(cache)
    assert first.dtype == torch.bfloat16 and first.path == source
    assert _stored_dtype(converted / "model.safetensors") == "BF16"
    assert [c[c.index("engine.convert") :][:3] for c in children] == [
        ["engine.convert", str(source), str(converted)]
    ]
    assert loads == [("exact", converted)]  # the source's fp32 weights never loaded here
    second, out2 = logits()
    assert loads[-1] == ("exact", converted) and second.path == source and len(children) == 1
    assert np.array_equal(out1, out2)

    (source / "model.safetensors").write_bytes((source / "model.safetensors").read_bytes())
    logits()  # a changed checkpoint (new modification time) is converted again
    assert len(_copies(cache)) == 2 and len(children) == 2
    assert loads[-1][1] in set(_copies(cache)) - {converted}

    logits("fp32")
    assert loads[-1][1] == source and len(_copies(cache)) == 2

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("TINGXIE_WEIGHTS_CACHE", str(blocker / "weights"))
    m, _ = logits()
    assert m.dtype == torch.bfloat16 and loads[-1][1] == source

    failing = tmp_path / "weights-2"
    monkeypatch.setenv("TINGXIE_WEIGHTS_CACHE", str(failing))
    monkeypatch.setattr("engine.children.module_command", lambda *a: [sys.executable, "-c", "1/0"])
    m, _ = logits()  # the child fails: this process loads and converts as before
    assert m.dtype == torch.bfloat16 and loads[-1][1] == source
    (kept,) = _copies(failing)
    assert _stored_dtype(kept / "model.safetensors") == "BF16"


def test_on_a_cpu_without_native_bf16_a_large_checkpoint_runs_on_an_int8_copy_made_once(
    tiny_model_dir, tmp_path, monkeypatch
):
    """Auto on a CPU without native bf16 (here: oneDNN capped at AVX2): a large fp32 checkpoint
    is exported to int8 once, in a child process whose stages a tqdm class hears, and run on
    ONNX Runtime with the same outputs as PyTorch's within int8's error; the next load takes the
    copy without a child; asking for a precision or for torch keeps torch; a failed export
    leaves the load in fp32, and is not tried again for the same checkpoint. The size threshold
    is lowered so the tiny model counts as large."""

    import numpy as np

    import engine.model as model_module
    from engine.embed import embed
    from engine.transcribe import Transcriber

    monkeypatch.setattr(model_module, "CONVERT_MIN_BYTES", 0)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    cache = tmp_path / "weights"
    monkeypatch.setenv("TINGXIE_WEIGHTS_CACHE", str(cache))
    source = tmp_path / "model"
    shutil.copytree(tiny_model_dir, source)
    children = _spy_children(monkeypatch)
    stages = []

    class Bar:
        def __init__(self, total, unit, desc):
            assert (total, unit) == (3, "stage")

        def update(self, n=1):
            stages.append(n)

        def close(self):
            pass

    audio = np.random.default_rng(0).normal(scale=0.1, size=32_000).astype(np.float32)
    int8 = load_model(source, tqdm_class=Bar)
    assert (int8.runtime, int8.attention, int8.path) == ("onnx-int8", "onnx-runtime", source)
    assert int8.precision == "int8"  # what transcripts and the CLI say it ran in
    assert len(children) == 1 and stages == [1, 1, 1]
    (copy,) = (p for p in cache.iterdir() if p.is_dir())
    assert (copy / "model.onnx").is_file() and not list(copy.glob("*.safetensors"))
    fp32 = load_model(source, LoadOptions(precision="fp32"))
    assert fp32.runtime == "torch" and fp32.dtype == torch.float32
    got, want = Transcriber(int8).logits([audio])[0], Transcriber(fp32).logits([audio])[0]
    assert got.shape == want.shape and np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.99
    assert (got.argmax(-1) == want.argmax(-1)).mean() > 0.9
    assert load_model(source).runtime == "onnx-int8" and len(children) == 1  # no child again
    assert load_model(source, LoadOptions(backend="torch")).runtime == "torch"
    wav = tmp_path / "a.wav"
    import soundfile

    soundfile.write(wav, audio, 16_000)
    vectors = embed(int8, wav).vectors  # the layers come from the checkpoint itself
    assert np.allclose(vectors, embed(fp32, wav).vectors, atol=1e-4)

    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")  # where bf16 is native, bf16 as before
    if model_module.cpu_has_fast_bf16():
        assert load_model(source).runtime == "torch"
        assert "engine.convert" in children.pop()  # its bf16 copy, made in a child

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    (source / "model.safetensors").write_bytes((source / "model.safetensors").read_bytes())
    import engine.children

    monkeypatch.setattr(  # a changed checkpoint: a new copy, whose export fails
        engine.children,
        "module_command",
        lambda *a: [sys.executable, "-c", "print('the exporter broke'); raise SystemExit(3)"],
    )
    failed = load_model(source)
    assert failed.runtime == "torch" and failed.dtype == torch.float32 and len(children) == 2
    (note,) = cache.glob("*.failed")
    assert "the exporter broke" in note.read_text()
    assert load_model(source).runtime == "torch" and len(children) == 2  # not tried again


def test_onednn_isa_cap_decides_native_bf16_and_amx(monkeypatch):
    import engine.model as model_module

    monkeypatch.setattr(model_module, "_cpu_flags", lambda: frozenset({"avx512_bf16", "amx_bf16"}))
    for cap, bf16, amx in (
        (None, True, True),
        ("ALL", True, True),
        ("AVX2", False, False),
        ("avx512_core", False, False),
        ("AVX512_CORE_BF16", True, False),
        ("AVX10_1_512", True, False),
        ("AVX512_CORE_AMX", True, True),
    ):
        if cap is None:
            monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
        else:
            monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
        assert (model_module.cpu_has_fast_bf16(), model_module.cpu_has_amx()) == (bf16, amx), cap
    monkeypatch.setattr(model_module, "_cpu_flags", lambda: frozenset({"avx2"}))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert not model_module.cpu_has_fast_bf16() and not model_module.cpu_has_amx()


def test_the_feature_encoder_runs_long_input_in_slices_with_the_same_output(
    tiny_model_dir, monkeypatch
):
    """load_model makes a layer-norm feature encoder (XLSR-53's kind) run 10 s of audio as
    three slices of at most 200 frames (bounded activations), and the logits equal those of
    the whole input at once; a group-norm encoder (the demo model's first layer normalizes
    over time) is left whole."""
    import numpy as np

    import engine.model as model_module
    from engine.model import DEMO_MODEL_DIR, slice_feature_encoder
    from engine.transcribe import Transcriber

    fp32 = LoadOptions(device="cpu", precision="fp32")
    sliced = load_model(tiny_model_dir, fp32)
    monkeypatch.setattr(model_module, "slice_feature_encoder", lambda model: False)
    whole = load_model(tiny_model_dir, fp32)
    encoder = sliced.model.base_model.feature_extractor
    calls = []  # the first layer's LayerNorm runs once a slice, on either layout
    norm = encoder.conv_layers[0].layer_norm
    norm.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape))
    audio = np.random.default_rng(1).normal(scale=0.1, size=160_000).astype(np.float32)
    got = Transcriber(sliced).logits([audio, audio[:48_000]])
    want = Transcriber(whole).logits([audio, audio[:48_000]])
    assert len(calls) == 3 + 1  # 500 frames in slices of 200; 150 frames whole
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and np.allclose(g, w, atol=1e-4)
    assert not slice_feature_encoder(load_model(DEMO_MODEL_DIR, fp32).model)


def test_the_channels_last_encoder_computes_what_the_module_does(tiny_model_dir):
    """The feature encoder as matrix products over (batch, frames, channels) gives the module's
    own output, shorter input than a frame raises the module's own error, training keeps the
    module's forward (its convolutions run), and a group-norm encoder is not taken."""
    import torch

    from engine.chunking import FrameGeometry
    from engine.model import DEMO_MODEL_DIR, channels_last_encoder

    fp32 = LoadOptions(device="cpu", precision="fp32")
    loaded = load_model(tiny_model_dir, fp32)
    encoder = loaded.model.base_model.feature_extractor
    fast = channels_last_encoder(encoder)
    assert fast is not None
    own = type(encoder).forward.__get__(encoder)  # load_model made the instance's forward fast
    config = loaded.model.config
    field = FrameGeometry.from_convs(config.conv_kernel, config.conv_stride).receptive_field
    torch.manual_seed(0)
    with torch.inference_mode():
        for n in (field, field + 1, 3 * field + 7, 16_000):
            x = torch.randn(2, n)
            got, want = fast(x), own(x)
            assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5), n
        with pytest.raises(RuntimeError):
            own(torch.randn(1, field - 1))
        with pytest.raises(RuntimeError):
            fast(torch.randn(1, field - 1))
    convs = []
    encoder.conv_layers[0].conv.register_forward_hook(lambda *a: convs.append(1))
    loaded.model.train()
    encoder(torch.randn(1, 16_000)).sum().backward()
    assert convs and encoder.conv_layers[0].conv.weight.grad is not None
    demo = load_model(DEMO_MODEL_DIR, fp32).model.base_model.feature_extractor
    assert channels_last_encoder(demo) is None


def test_blocked_attention_is_picked_in_bf16_on_a_cpu_without_amx(monkeypatch):
    import engine.model

    cpu, bf16, fp32 = torch.device("cpu"), torch.bfloat16, torch.float32
    wav2vec2 = FAMILIES["wav2vec2"]
    monkeypatch.setattr(engine.model, "cpu_has_amx", lambda: False)
    assert pick_attention("auto", wav2vec2, cpu, bf16) == "blocked"
    assert pick_attention("auto", wav2vec2, cpu, fp32) == "sdpa"
    assert pick_attention("auto", FAMILIES["wavlm"], cpu, bf16) == "eager"
    with pytest.raises(ModelLoadError, match="eager"):
        pick_attention("blocked", FAMILIES["wavlm"], cpu, bf16)
    monkeypatch.setattr(engine.model, "cpu_has_amx", lambda: True)
    assert pick_attention("auto", wav2vec2, cpu, bf16) == "sdpa"


def test_blocked_attention_computes_what_sdpa_does(tiny_model_dir):
    """Block by block over heads and queries (two clips of 4 heads, 8 rows in groups; lengths
    that leave a short last block) it gives SDPA's result; with gradients or a padding mask it
    is SDPA; a model loaded with it gives the SDPA model's outputs."""
    import torch.nn.functional as F

    from engine.model import _QUERY_BLOCK, blocked_attention

    module = torch.nn.Module().eval()
    torch.manual_seed(0)
    for frames in (7, _QUERY_BLOCK, 2 * _QUERY_BLOCK + 3):
        # as transformers passes them: (batch, frames, heads, width) seen as (b, heads, frames, w)
        q, k, v = (torch.randn(2, frames, 4, 16).transpose(1, 2) for _ in range(3))
        want = F.scaled_dot_product_attention(q, k, v, scale=0.3).transpose(1, 2)
        with torch.inference_mode():
            got, weights = blocked_attention(module, q, k, v, None, scaling=0.3)
        assert weights is None and got.shape == want.shape
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    q.requires_grad_(True)
    got, _ = blocked_attention(module, q, k, v, None, scaling=0.3)
    got.sum().backward()  # SDPA's graph: gradients flow
    assert q.grad is not None
    mask = torch.zeros(2, 1, 1, q.shape[-2])
    mask[1, ..., -5:] = float("-inf")
    with torch.inference_mode():
        masked, _ = blocked_attention(module, q, k, v, mask, scaling=0.3)
    want = F.scaled_dot_product_attention(q, k, v, mask, scale=0.3).transpose(1, 2)
    torch.testing.assert_close(masked, want, atol=1e-5, rtol=1e-4)

    fp32 = dict(device="cpu", precision="fp32")
    blocked = load_model(tiny_model_dir, LoadOptions(attention="blocked", **fp32))
    sdpa = load_model(tiny_model_dir, LoadOptions(attention="sdpa", **fp32))
    assert blocked.attention == "blocked"
    x = torch.randn(1, 24_000)
    with torch.inference_mode():
        torch.testing.assert_close(blocked.model(x).logits, sdpa.model(x).logits)


_SHAPES_PROBE = """
import engine, torch  # engine first, as every entry point imports it
lin = torch.nn.Linear(1024, 4096).to(torch.bfloat16)
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
with torch.inference_mode():
    lin(torch.randn(8, 1024, dtype=torch.bfloat16))
    before = rss()
    for n in range(500, 580):  # one new input shape per call, as chunks cut at pauses are
        lin(torch.randn(n, 1024, dtype=torch.bfloat16))
print(rss() - before)
"""


def _growth_mb(**env: str) -> float:
    import os
    import subprocess
    import sys

    environ = {k: v for k, v in os.environ.items() if not k.endswith("CACHE_CAPACITY")}
    out = subprocess.run(
        [sys.executable, "-c", _SHAPES_PROBE],
        env=environ | env,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.split()[-1])


@pytest.mark.skipif(not Path("/proc/self/statm").is_file(), reason="reads Linux's /proc")
def test_importing_engine_bounds_the_memory_onednn_keeps_per_input_shape():
    """bf16 matrix products of 80 input lengths: oneDNN's default caches keep each one's
    primitives (~4 MB a shape here); the sizes importing engine sets keep a few. Each side
    measured twice, its smaller growth kept: a resident-size reading can catch the allocator
    mid-way. With 40 lengths the two were too close for that noise (in full runs 74 and 73 MB
    bounded against 138 and 141 unbounded; alone 46-86 against 164-181); with 80 the unbounded
    growth doubles and the bounded one does not (alone: 61 against 309 MB)."""
    unbounded = min(
        _growth_mb(ONEDNN_PRIMITIVE_CACHE_CAPACITY="1024", LRU_CACHE_CAPACITY="1024")
        for _ in range(2)
    )
    if unbounded < 60:
        pytest.skip(f"this CPU's bf16 products keep no per-shape state ({unbounded:.0f} MB)")
    assert min(_growth_mb() for _ in range(2)) < unbounded / 2


def _imported_after_import_runtime(source: Path | str, backend: str = "auto") -> set[str]:
    """Which of torch and transformers' model code a fresh interpreter holds after
    `import_runtime(source, backend)`."""
    import subprocess
    import sys

    probe = (
        "import sys; from engine.model import import_runtime; "
        f"import_runtime({str(source)!r}, {backend!r}); "
        "print(' '.join(m for m in ('torch', 'transformers.modeling_utils') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_importing_ahead_takes_what_the_models_runtime_needs(tiny_model_dir, tmp_path):
    """The app's head start (engine.model.import_runtime) imports torch and transformers for a
    checkpoint, torch alone for an ONNX folder, neither for Whisper, and never raises."""
    both = {"torch", "transformers.modeling_utils"}
    assert _imported_after_import_runtime(tiny_model_dir) == both
    assert _imported_after_import_runtime(tiny_model_dir, "onnx") == {"torch"}
    onnx = tmp_path / "onnx"
    onnx.mkdir()
    (onnx / "config.json").write_text('{"model_type": "wav2vec2"}')
    (onnx / "model.onnx").write_bytes(b"")
    assert _imported_after_import_runtime(onnx) == {"torch"}
    # on PyTorch the load refuses an ONNX export at once (model.onnx_only): no transformers
    assert _imported_after_import_runtime(onnx, "torch") == {"torch"}
    whisper = tmp_path / "whisper"
    whisper.mkdir()
    (whisper / "config.json").write_text("{}")
    (whisper / "model.bin").write_bytes(b"")
    assert _imported_after_import_runtime(whisper) == set()
    assert _imported_after_import_runtime(tmp_path / "missing") == both  # a Hub id's case


def test_a_load_on_another_thread_waits_for_the_imports_ahead(tiny_model_dir):
    """The app's engine thread imports ahead (import_runtime) while another thread may load (a
    tool that builds the window and transcribes on its own thread did): in a fresh interpreter
    the load must not see transformers half imported."""
    import subprocess
    import sys

    probe = (
        "import threading; from engine.model import import_runtime, load_model; "
        f"t = threading.Thread(target=import_runtime, args=({str(tiny_model_dir)!r},)); "
        f"t.start(); m = load_model({str(tiny_model_dir)!r}); t.join(); print(len(m.vocab) > 0)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == "True"


def test_the_conversion_child_runs_in_the_bundle_too(tmp_path, monkeypatch):
    """The bundled program has no `-m`: it dispatches engine.convert on its first argument, as
    engine.children.module_command calls it there."""
    import subprocess

    from engine.children import module_command

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert module_command("engine.convert", "a")[1:] == ["engine.convert", "a"]
    root = Path(__file__).resolve().parents[1]
    program = root / "packaging" / "bundle" / "tingxie_app.py"
    run = subprocess.run(
        [sys.executable, str(program), "engine.convert", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and "python -m engine.convert" in run.stdout


@pytest.mark.parametrize("kept_bytes", [0, 5_000])
def test_a_damaged_converted_copy_is_made_again_not_a_dead_end(
    tiny_model_dir, tmp_path, monkeypatch, kept_bytes
):
    """A converted copy cut short (a power cut, a full disk: 0 bytes or a part of the file)
    blocked its checkpoint for good, the message naming the cache file or a vocab.json the cache
    never holds; it is removed and made again, and the model loads."""

    import engine.model as model_module

    monkeypatch.setattr(model_module, "CONVERT_MIN_BYTES", 0)
    cache = tmp_path / "weights"
    monkeypatch.setenv("TINGXIE_WEIGHTS_CACHE", str(cache))
    source = tmp_path / "model"
    shutil.copytree(tiny_model_dir, source)
    children = _spy_children(monkeypatch)
    options = LoadOptions(device="cpu", precision="bf16")
    load_model(source, options)
    (copy,) = _copies(cache)
    weights = copy / "model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(kept_bytes)
    again = load_model(source, options)
    assert again.dtype == torch.bfloat16 and len(children) == 2
    assert weights.stat().st_size > kept_bytes  # made again, whole
    load_model(source, options)
    assert len(children) == 2  # and used as it is


def test_a_cache_that_cannot_keep_the_copy_costs_one_conversion_not_a_failure(
    tiny_model_dir, tmp_path, monkeypatch, caplog
):
    """A full or read-only cache: the child says so (engine.model.NOT_KEPT) and the load
    converts for itself without trying to keep a copy again; a save that fails with
    safetensors' own error (how a full disk shows there) is a warning, not a traceback."""
    from safetensors import SafetensorError

    import engine.model as model_module
    from engine.model import NOT_KEPT, keep_converted

    class Full:
        name_or_path = "m"

        def save_pretrained(self, folder, **_):
            raise SafetensorError("I/O error: No space left on device (os error 28)")

    assert keep_converted(Full(), tmp_path / "cache" / "x") is False
    assert "No space left" in caplog.text and not (tmp_path / "cache" / "x").exists()

    monkeypatch.setattr(model_module, "CONVERT_MIN_BYTES", 0)
    monkeypatch.setenv("TINGXIE_WEIGHTS_CACHE", str(tmp_path / "weights"))
    monkeypatch.setattr(
        "engine.children.module_command",
        lambda *a: [sys.executable, "-c", f"raise SystemExit({NOT_KEPT})"],
    )
    kept = []
    monkeypatch.setattr(model_module, "keep_converted", lambda *a: kept.append(a) or False)
    m = load_model(tiny_model_dir, LoadOptions(device="cpu", precision="bf16"))
    assert m.dtype == torch.bfloat16 and kept == []


def test_a_childs_failure_is_quoted_without_its_progress_bars(tmp_path):
    """What the caller logs of a failed child: its last words and status, not a tqdm bar."""
    from engine.model import _run_child

    bar = "Loading weights: 100%|##########| 72/72 [00:00<00:00, 15403.67it/s]"
    code = f"import sys; print({bar!r}); print('error: the disk broke'); sys.exit(4)"
    status, said = _run_child([sys.executable, "-c", code])
    assert status == 4 and said == "error: the disk broke"
    assert _run_child([sys.executable, "-c", "raise SystemExit(5)"]) == (5, "exit status 5")


def test_an_int8_copy_stopped_by_the_disk_is_tried_again_next_time(
    tiny_model_dir, tmp_path, monkeypatch
):
    """A full or read-only disk is not the exporter's failure: no marker that would keep the
    checkpoint in fp32 until the libraries change; the next load tries again."""
    import engine.children
    import engine.model as model_module

    monkeypatch.setattr(model_module, "CONVERT_MIN_BYTES", 0)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    cache = tmp_path / "weights"
    monkeypatch.setenv("TINGXIE_WEIGHTS_CACHE", str(cache))
    said = "OSError: [Errno 28] No space left on device"
    monkeypatch.setattr(
        engine.children,
        "module_command",
        lambda *a: [sys.executable, "-c", f"print({said!r}); raise SystemExit(1)"],
    )
    assert load_model(tiny_model_dir).runtime == "torch"
    assert not list(cache.glob("*.failed"))


def test_weights_rewritten_with_their_old_time_are_converted_anew(
    tiny_model_dir, tmp_path, monkeypatch
):
    """The cache is named by the checkpoint's identity: rewritten in place with its old
    modification time put back (same size), it is another checkpoint."""
    import os

    import engine.model as model_module
    from engine.model import _converted_weights

    monkeypatch.setattr(model_module, "CONVERT_MIN_BYTES", 0)
    source = tmp_path / "model"
    shutil.copytree(tiny_model_dir, source)
    weights = source / "model.safetensors"
    before = weights.stat()
    first = _converted_weights(source, torch.bfloat16)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (weights.stat().st_mtime_ns, weights.stat().st_size) == (
        before.st_mtime_ns,
        before.st_size,
    )
    assert _converted_weights(source, torch.bfloat16) != first


def test_two_processes_loading_a_checkpoint_first_convert_it_once(tiny_model_dir, tmp_path):
    """The app and the CLI loading the same large checkpoint for the first time at once both
    converted it (twice the time and memory): the second waits for the first one's copy."""
    import subprocess

    source = tmp_path / "model"
    shutil.copytree(tiny_model_dir, source)
    script = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.WARNING, format='%(message)s')\n"
        "import engine.model as m\n"
        "m.CONVERT_MIN_BYTES = 0\n"
        "model = m.load_model(sys.argv[1], m.LoadOptions(device='cpu', precision='bf16'))\n"
        "print(model.dtype)\n"
    )
    env = {**os.environ, "TINGXIE_WEIGHTS_CACHE": str(tmp_path / "weights")}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(source)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    said = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], said
    assert all(out.strip() == "torch.bfloat16" for out, _ in said)
    assert sum(err.count("converting the weights") for _, err in said) == 1, said
