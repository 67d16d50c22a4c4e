"""The model's representations: per-frame vectors of any layer, with their times, or one vector
per file — for researchers who cluster, probe or search speech with them.

Long files go through the same chunking as transcription (`engine.chunking`): each chunk sees
its stride of context on both sides and only its own frames are kept, so the vectors line up
with the CTC frames and their times.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from . import audio
from .chunking import ChunkPlan, iter_chunks, join_frames
from .errors import TingxieError
from .model import LoadedModel, LoadOptions, load_model
from .transcribe import Transcriber

__all__ = ["EmbedError", "EmbedOptions", "Embedding", "embed", "write_embedding"]

Pool = Literal["none", "mean"]


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


def write_embedding(
    result: Embedding,
    out_dir: str | os.PathLike[str],
    fmt: Literal["npy", "parquet"] = "npy",
    stem: str | None = None,
) -> Path:
    """npy: STEM.npy (vectors) and STEM.times.npy; parquet: STEM.parquet, one row per vector
    with start, end and the vector (pyarrow). STEM: the source's, unless given (two sources
    with one name in one folder)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = stem or Path(result.source).stem
    if fmt == "npy":
        np.save(out / f"{stem}.times.npy", result.times)
        path = out / f"{stem}.npy"
        np.save(path, result.vectors)
        return path
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
    path = out / f"{stem}.parquet"
    pq.write_table(table, path)
    return path
