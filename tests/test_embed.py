"""Embeddings: the vectors are the model's own hidden states for that layer, one per CTC frame,
with the frames' times; long files are chunked like transcription; CLI writes npy and parquet."""

from __future__ import annotations

import pathlib
import shutil
import sys

import numpy as np
import pytest
import torch

from engine.audio import load_audio, write_wav
from engine.cli import main as cli
from engine.embed import Embedding, EmbedError, EmbedOptions, embed, write_embedding
from engine.model import LoadOptions, load_model
from engine.transcribe import Transcriber


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(tiny_model_dir, LoadOptions(device="cpu", precision="fp32"))


def _signal(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(seconds * 16_000))).astype(np.float32)


@pytest.mark.parametrize("layer", [0, 1, -1])
def test_vectors_equal_the_models_hidden_states(model, tmp_path, layer):
    audio = _signal(3.0)
    write_wav(tmp_path / "a.wav", audio)
    result = embed(model, tmp_path / "a.wav", EmbedOptions(layer=layer))
    audio = load_audio(tmp_path / "a.wav")  # as written: 16-bit
    x = torch.from_numpy(Transcriber(model)._normalize(audio))[None]
    with torch.no_grad():
        expected = model.model(x, output_hidden_states=True).hidden_states[layer][0].numpy()
    assert result.vectors.shape == expected.shape
    assert np.allclose(result.vectors, expected, atol=1e-4)
    # one vector per CTC frame, 20 ms apart, as the characters' times count them
    frames = Transcriber(model).geometry.frames(len(audio))
    assert len(result.times) == frames
    assert np.allclose(np.diff(result.times[:, 0]), 0.02)
    assert result.times[0, 0] == 0.0 and np.allclose(result.times[:, 1] - result.times[:, 0], 0.02)


def test_long_files_are_chunked_frame_exactly(model, tmp_path):
    """With 2 s chunks, a 7 s file still gives exactly one vector per frame of the whole file
    (no frame lost or doubled where chunks meet), at the same times."""
    audio = _signal(7.0, seed=1)
    write_wav(tmp_path / "long.wav", audio)
    chunked = embed(
        model, tmp_path / "long.wav", EmbedOptions(chunk_seconds=2.0, stride_seconds=0.5)
    )
    whole = embed(model, tmp_path / "long.wav", EmbedOptions(chunk_seconds=30.0))
    assert chunked.vectors.shape == whole.vectors.shape
    assert np.array_equal(chunked.times, whole.times)


def test_mean_pooling_gives_one_vector_per_file(model, tmp_path):
    write_wav(tmp_path / "a.wav", _signal(2.0))
    frames = embed(model, tmp_path / "a.wav")
    pooled = embed(model, tmp_path / "a.wav", EmbedOptions(pool="mean"))
    assert pooled.vectors.shape == (1, frames.vectors.shape[1])
    assert np.allclose(pooled.vectors[0], frames.vectors.mean(axis=0), atol=1e-5)
    assert pooled.times.tolist() == [[0.0, frames.times[-1, 1]]]


def test_a_layer_the_model_lacks_is_a_clear_error(model, tmp_path):
    write_wav(tmp_path / "a.wav", _signal(1.0))
    with pytest.raises(ValueError, match="layers 0-"):
        embed(model, tmp_path / "a.wav", EmbedOptions(layer=99))


@pytest.mark.parametrize("fmt", ["npy", "parquet"])
def test_cli_writes_vectors_and_times(tiny_model_dir, tmp_path, fmt, capsys):
    write_wav(tmp_path / "a.wav", _signal(2.0))
    out = tmp_path / "out"
    assert cli(["embed", str(tmp_path / "a.wav"), "--model", str(tiny_model_dir), "--out",
                str(out), "--format", fmt, "--layer", "1"]) == 0  # fmt: skip
    direct = embed(load_model(tiny_model_dir, LoadOptions(device="cpu")), tmp_path / "a.wav",
                   EmbedOptions(layer=1))  # fmt: skip
    if fmt == "npy":
        vectors, times = np.load(out / "a.npy"), np.load(out / "a.times.npy")
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(out / "a.parquet")
        vectors = np.stack(table.column("vector").to_numpy(zero_copy_only=False))
        times = np.stack([table.column("start").to_numpy(), table.column("end").to_numpy()], 1)
        assert table.schema.metadata[b"layer"] == b"1"
    assert np.allclose(vectors, direct.vectors, atol=1e-5)
    assert np.allclose(times, direct.times)


def test_embed_takes_the_allow_pickle_its_error_names(tiny_model_dir, tmp_path, capsys):
    """Before: the error said to pass --allow-pickle, and embed refused that option (a usage
    error)."""
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    write_wav(tmp_path / "a.wav", _signal(1.0))
    args = ["embed", str(tmp_path / "a.wav"), "--model", str(folder), "--out", str(tmp_path)]
    assert cli(args) == 2
    assert "(--allow-pickle)" in capsys.readouterr().err
    assert cli([*args, "--allow-pickle"]) == 0
    assert np.load(tmp_path / "a.npy").ndim == 2  # a vector a frame


def test_a_mean_of_audio_shorter_than_one_frame_is_an_error_and_the_other_files_are_done(
    model, tiny_model_dir, tmp_path, capsys
):
    write_wav(tmp_path / "short.wav", _signal(0.01))
    write_wav(tmp_path / "a.wav", _signal(1.0))
    shortest = round(1000 * Transcriber(model).geometry.receptive_field / 16_000)
    with pytest.raises(EmbedError, match=f"short.wav: too short.*at least {shortest} ms"):
        embed(model, tmp_path / "short.wav", EmbedOptions(pool="mean"))
    out = tmp_path / "out"
    rc = cli(["embed", str(tmp_path / "short.wav"), str(tmp_path / "a.wav"), "--model",
              str(tiny_model_dir), "--out", str(out), "--pool", "mean"])  # fmt: skip
    assert rc == 1
    assert "short.wav: too short" in capsys.readouterr().err
    assert not (out / "short.npy").exists()
    assert np.isfinite(np.load(out / "a.npy")).all()


def test_files_that_share_a_name_are_written_apart(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "day2").mkdir()
    write_wav(tmp_path / "one.wav", _signal(1.0))
    write_wav(tmp_path / "day2" / "one.wav", _signal(2.0))
    out = tmp_path / "out"
    assert cli(["embed", str(tmp_path / "one.wav"), str(tmp_path / "day2" / "one.wav"),
                "--model", str(tiny_model_dir), "--out", str(out)]) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(f"-> {out / 'one.npy'}")
    assert lines[1].startswith(str(tmp_path / "day2" / "one.wav"))
    assert lines[1].endswith(f"-> {out / 'one-2.npy'}")
    first, second = np.load(out / "one.npy"), np.load(out / "one-2.npy")
    assert len(second) > len(first)  # the 2 s file's, not written over
    assert len(np.load(out / "one-2.times.npy")) == len(second)


@pytest.mark.parametrize("order", [("one.times", "one"), ("one", "one.times")])
def test_a_file_named_like_anothers_times_file_is_written_apart(
    tiny_model_dir, tmp_path, capsys, order
):
    """one.wav's times go to one.times.npy, the vectors file of one.times.wav: either order
    wrote one over the other."""
    seconds = {"one": 1.0, "one.times": 2.0}
    for stem in order:
        write_wav(tmp_path / f"{stem}.wav", _signal(seconds[stem]))
    out = tmp_path / "out"
    files = [str(tmp_path / f"{stem}.wav") for stem in order]
    assert cli(["embed", *files, "--model", str(tiny_model_dir), "--out", str(out)]) == 0
    written = {}
    for line in capsys.readouterr().out.splitlines():
        source, path = line.split(": ")[0], line.rsplit("-> ", 1)[1]
        written[source.rsplit("/", 1)[1].removesuffix(".wav")] = pathlib.Path(path)
    assert len(set(written.values())) == 2
    for stem, vectors in written.items():
        times = vectors.with_name(vectors.stem + ".times.npy")
        assert len(np.load(vectors)) == len(np.load(times)) > 0
        assert np.load(times)[-1, 1] == pytest.approx(seconds[stem], abs=0.05)
    assert len(list(out.glob("*.npy"))) == 4


def test_an_output_folder_that_cannot_be_written_is_found_before_the_model_runs(
    tiny_model_dir, tmp_path, capsys
):
    write_wav(tmp_path / "a.wav", np.zeros(16_000, np.float32))
    (tmp_path / "afile").write_text("in the way", encoding="utf-8")
    args = ["embed", str(tmp_path / "a.wav"), "--model", str(tiny_model_dir)]
    assert cli([*args, "--out", str(tmp_path / "afile")]) == 2  # was a traceback
    assert f"{tmp_path / 'afile'}: nothing can be written there" in capsys.readouterr().err


def test_parquet_without_pyarrow_says_what_to_install_before_the_model_loads(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    """It ran the model, then died in a traceback (ModuleNotFoundError: pyarrow)."""
    import engine.model

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # not installed: found nowhere

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(engine.model, "load_model", never)
    write_wav(tmp_path / "a.wav", _signal(1.0))
    out = tmp_path / "out"
    assert cli(["embed", str(tmp_path / "a.wav"), "--model", str(tiny_model_dir), "--out",
                str(out), "--format", "parquet"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "pyarrow" in err and "pip install -e '.[parquet]'" in err and "Traceback" not in err
    assert not out.exists()


def test_writing_parquet_without_pyarrow_is_an_engine_error(tmp_path, monkeypatch):
    """The app's worker words engine errors (and OSError, ValueError); a bare ImportError got
    past it. Nothing is written."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    times = np.array([[0.0, 0.02], [0.02, 0.04]])
    result = Embedding("a.wav", -1, np.zeros((2, 4), np.float32), times)
    with pytest.raises(EmbedError) as excinfo:
        write_embedding(result, tmp_path / "out", "parquet")
    assert excinfo.value.code == "embed.parquet_missing"
    assert "pip install -e '.[parquet]'" in str(excinfo.value)
    assert not (tmp_path / "out").exists()
