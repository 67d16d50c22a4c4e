"""The model's representations: per-frame vectors of any layer, with their times, or one vector
per file — for researchers who cluster, probe or search speech with them.

Long files go through the same chunking as transcription (`engine.chunking`): each chunk sees
its stride of context on both sides and only its own frames are kept, so the vectors line up
with the CTC frames and their times.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Container, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from . import audio
from .atomic import atomic_write_files
from .chunking import ChunkPlan, iter_chunks, join_frames
from .errors import TingxieError
from .extras import install_hint
from .model import LoadedModel, LoadOptions, load_model
from .transcribe import Transcriber
from .watch import unique_base

__all__ = [
    "EmbedError",
    "EmbedOptions",
    "Embedding",
    "TakenBases",
    "embed",
    "embedding_files",
    "ensure_format_available",
    "write_embedding",
]

Pool = Literal["none", "mean"]
Format = Literal["npy", "parquet"]


class EmbedError(TingxieError, ValueError):
    """A file's vectors cannot be computed (it names the file and what to do)."""


@dataclass(frozen=True, slots=True)
class EmbedOptions:
    layer: int = -1  # hidden state: 0 = the transformer's input, 1… its layers, -1 = the last
    pool: Pool = "none"  # none: one vector per frame; mean: one per file
    chunk_seconds: float = 20.0  # as transcription: audio the model sees at once
    stride_seconds: float = 1.5  # context on each side of a chunk whose frames are dropped

    def __post_init__(self) -> None:
        if self.pool not in ("none", "mean"):
            raise ValueError(f"pool={self.pool!r}: choose none or mean")


@dataclass(frozen=True, slots=True)
class Embedding:
    source: str
    layer: int
    vectors: np.ndarray  # (n, hidden size) float32
    times: np.ndarray  # (n, 2) start and end second of each vector


def _frames(
    transcriber: Transcriber, source: str | os.PathLike[str], options: EmbedOptions
) -> Iterator[np.ndarray]:
    plan = ChunkPlan.from_seconds(
        options.chunk_seconds,
        options.stride_seconds,
        transcriber.geometry,
        transcriber.model.sampling_rate,
    )
    for chunk in iter_chunks(audio.iter_audio(source), plan):
        (states,) = transcriber.hidden_states([chunk.audio], options.layer)
        yield join_frames(chunk, states)


def embed(
    model: LoadedModel, source: str | os.PathLike[str], options: EmbedOptions | None = None
) -> Embedding:
    """Vectors of one file (any format engine.audio reads)."""
    options = options or EmbedOptions()
    if model.runtime == "onnx-int8":  # this CPU's int8 copy: the checkpoint has the layers
        model = load_model(model.path, LoadOptions(device="cpu", backend="torch"))
    if model.attention == "onnx-runtime":
        raise ValueError(
            f"{model.source}: an ONNX export holds only the logits; embed with the PyTorch model"
        )
    transcriber = Transcriber(model)
    layers = int(model.model.config.num_hidden_layers)
    if not -layers - 1 <= options.layer <= layers:
        raise ValueError(f"layer={options.layer}: this model has layers 0-{layers} (-1 = last)")
    parts = list(_frames(transcriber, source, options))
    width = int(model.model.config.hidden_size)
    vectors = np.concatenate(parts) if parts else np.zeros((0, width), np.float32)
    step = transcriber.frame_seconds
    starts = np.arange(len(vectors)) * step
    times = np.stack([starts, starts + step], axis=1)
    if options.pool == "mean":
        if not len(vectors):  # the mean of no vector is NaN, not a vector
            shortest = transcriber.geometry.receptive_field / model.sampling_rate
            raise EmbedError("embed.too_short", path=source, ms=round(1000 * shortest))
        vectors, times = vectors.mean(axis=0, keepdims=True), np.array([[0.0, times[-1, 1]]])
    return Embedding(str(source), options.layer, vectors.astype(np.float32), times)


def embedding_files(base: Path, fmt: Format) -> tuple[Path, ...]:
    """The files one embedding writes at `base` (a path without suffix): npy BASE.npy and
    BASE.times.npy, parquet BASE.parquet."""
    if fmt == "npy":
        return base.with_name(f"{base.name}.npy"), base.with_name(f"{base.name}.times.npy")
    return (base.with_name(f"{base.name}.parquet"),)


class TakenBases:
    """`engine.watch.unique_base`'s container for embeddings: a base is taken when any file it
    would write is among `written` (this run's: a source named one.times.wav writes
    one.times.npy, which is one.wav's times file) or, with `on_disk`, there already."""

    def __init__(self, fmt: Format, written: Container[Path] = (), on_disk: bool = True) -> None:
        self.fmt, self.written, self.on_disk = fmt, written, on_disk

    def __contains__(self, base: object) -> bool:
        return isinstance(base, Path) and any(
            f in self.written or (self.on_disk and f.exists())
            for f in embedding_files(base, self.fmt)
        )


def ensure_format_available(fmt: Format) -> None:
    """Raise EmbedError, saying what to install, when `fmt` needs a package that is missing
    (parquet: pyarrow, the parquet extra): checked before a model runs, not after."""
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise EmbedError("embed.parquet_missing", hint=install_hint("parquet"))


def write_embedding(
    result: Embedding,
    out_dir: str | os.PathLike[str],
    fmt: Format = "npy",
    stem: str | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """npy: STEM.npy (vectors) and STEM.times.npy; parquet: STEM.parquet, one row per vector
    with start, end and the vector (pyarrow). STEM: the source's, unless given (two sources
    with one name in one folder). A file there already (the person's own, another layer's
    vectors) is kept, unless `overwrite`: they go to STEM-2, STEM-3…; the path written is
    returned."""
    ensure_format_available(fmt)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = out / (stem or Path(result.source).stem)
    if not overwrite:
        base = unique_base(base, TakenBases(fmt))
    files = embedding_files(base, fmt)
    if fmt == "npy":
        atomic_write_files(
            [
                (files[0], lambda f: np.save(f, result.vectors)),
                (files[1], lambda f: np.save(f, result.times)),
            ]
        )
        return files[0]
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "start": result.times[:, 0],
            "end": result.times[:, 1],
            "vector": pa.FixedSizeListArray.from_arrays(
                result.vectors.reshape(-1), result.vectors.shape[1]
            ),
        },
        metadata={"source": result.source, "layer": str(result.layer)},
    )
    atomic_write_files([(files[0], lambda f: pq.write_table(table, f))])
    return files[0]
