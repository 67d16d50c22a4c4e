"""Speed of Tingxie against the peers a user could pick for the same checkpoint, on the same long
file, in one run: the Hugging Face ASR pipeline as most users call it and as configured at its
best, plain ONNX Runtime on an exported model (fp32 and int8) and CTranslate2 (int8).

    .venv/bin/python bench/bench_transcribe.py                 # 1 minute of speech, every side
    .venv/bin/python bench/bench_transcribe.py --minutes 4 --sides pipeline-best,tingxie
    python bench/bench_transcribe.py --device cuda --minutes 60 --uneven \
        --sides pipeline,pipeline-best,tingxie,tingxie-no-cuts      # on a GPU

Builds a random checkpoint with the exact architecture of the default model (XLSR-53 large) and
its exports (cached in bench/.cache/, once: minutes), loops the real clips of ../shared/audio
into one long file, and runs each side in its own subprocess (clean peak memory, no shared
caches), every one with the same number of threads (the cores this process may use):

- pipeline: `transformers.pipeline("automatic-speech-recognition", chunk_length_s=20)` at its
  defaults (fp32, batch 1, strides of chunk/6 on each side, oneDNN's cache sizes), as a user
  would call it;
- pipeline-best: the same pipeline configured like Tingxie: the precision Tingxie picks on this
  CPU (bf16 with AVX512-BF16/AMX, else fp32), batch_size 4, stride_length_s 1.5, and the oneDNN
  cache sizes importing `engine` sets;
- tingxie: `Transcriber` with default options and automatic precision, batched chunks;
- tingxie-fp32: the same in fp32 (separates the precision gain from the rest);
- tingxie-no-cuts: the same with fixed chunks across the pauses (`cut_at_pauses=False`, the
  pipeline's way; separates the gain of decoding each stretch between pauses alone);
- tingxie-every-sample: the same with the silence of each pause decoded too
  (`skip_silence=False`; separates the gain of skipping it beyond 0.3 s of the speech);
- tingxie-module-encoder: the same with the feature encoder run by its transformers module
  (transposes around each LayerNorm) instead of channels-last (engine.model.channels_last_encoder);
- tingxie-sdpa: the same with PyTorch's SDPA (its CPU flash kernel) where Tingxie picks blocked
  attention (bf16 on a CPU without AMX; engine.model.blocked_attention);
- tingxie-onednn-caches: the same with oneDNN's own cache sizes (1024 primitives) where
  importing `engine` sets 8 (engine/__init__.py);
- tingxie-onnx-int8: `Transcriber` on the int8 export below, through Tingxie's ONNX Runtime
  backend (engine/onnx.py), as a user runs `--model` on a folder `tingxie-cli export --format
  onnx --quantize int8` wrote;
- onnxruntime / onnxruntime-int8: an ONNX Runtime session on the model exported by
  `engine.export_onnx` (torch.onnx.export; int8: ONNX Runtime's dynamic quantization of the
  MatMuls); ctranslate2-int8: CTranslate2's Wav2Vec2 model converted by its own converter, int8.
  These three run what a careful user would write around a bare runtime, given Tingxie's
  chunking: 20 s chunks with 1.5 s strides (engine.chunking), per-chunk normalization, batches of
  4 equal-length chunks, greedy CTC decoding of the kept frames.

Every side times the whole path from the file to the text (audio decoding included) after a
warm-up on 2 s; its peak memory is its own process's (a first load's conversion of the weights
to bf16 runs in a child process of its own, engine.convert, once a checkpoint). Prints each
side's configuration, wall-clock and CPU-time figures, real-time factor, peak resident memory,
throughput ratios against the pipeline at its defaults and against the best-configured peer
(the fastest side that is not Tingxie), and the character agreement of each text with the first
side's. Random weights sit near ties, so bf16 and int8 flip argmaxes: agreement here measures
plumbing, not accuracy.

With --device cuda the pipeline and Tingxie sides run on the GPU: the pipeline at its defaults
(fp32, batch 1) and at its best (the precision Tingxie picks there, bf16 on recent GPUs, batch
16), Tingxie with its own GPU defaults (16 chunks a pass, padded under an attention mask); the
table adds each side's speed in multiples of real time and its peak GPU memory
(torch.cuda.max_memory_allocated). --forward-only instead checks and times the model's forward
alone (`Transcriber.log_probs`): a padded batch of different lengths against each array's own
pass, in fp32 and at the automatic precision, then batches of 1, 16 and 32 chunks of 20 s.
--cpu-side times everything but the model: `Transcriber` on the uneven file with its forward
replaced by random log-probs over the full vocabulary (a character at nearly every frame, as
random weights give, or at a trained model's density, 85 % blank frames), reading in turn and
with the GPU's read-ahead thread: the ceiling a GPU's transcription meets on this CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from bench_accuracy import positive_number

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache"
# --audio-dir: another folder laid out the same (a copy, on a machine without ../shared)
SHARED_AUDIO = ROOT.parent / "shared" / "audio"
SR = 16_000
# Audio decoded in one pass (no chunks) to measure how chunking changes the text.
SINGLE_PASS_SECONDS = 60.0
SIDES = (
    "pipeline", "pipeline-best", "tingxie", "tingxie-fp32", "tingxie-no-cuts",
    "tingxie-every-sample", "tingxie-module-encoder", "tingxie-sdpa", "tingxie-onednn-caches",
    "onnxruntime", "onnxruntime-int8", "tingxie-onnx-int8", "ctranslate2-int8",
)  # fmt: skip
LEVERS = (
    "tingxie-fp32", "tingxie-no-cuts", "tingxie-every-sample", "tingxie-module-encoder",
    "tingxie-sdpa", "tingxie-onednn-caches",
)  # fmt: skip
DEFAULT_SIDES = [s for s in SIDES if s not in LEVERS]


class PeakRss:
    """Samples this process's resident memory every 50 ms (torch allocates outside Python's
    tracemalloc), reporting the peak while active."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _threads() -> int:
    return len(os.sched_getaffinity(0))


# ---- one-time preparation (main process) ----------------------------------------------


def build_full_model() -> Path:
    """The full-size random checkpoint, built once into bench/.cache."""
    from engine.testmodels import build_model

    path = CACHE / "xlsr53-large-random"
    if not (path / "model.safetensors").is_file():
        print(f"building the full-size random model in {path} (once) …", flush=True)
        build_model(CACHE / "xlsr53-large-random.partial", "full", seed=0)
        (CACHE / "xlsr53-large-random.partial").rename(path)
    return path


# --density trained: frames a trained CTC model leaves blank (the demo model's output on speech;
# random weights emit a character at nearly every frame, ~5x the decoding work)
TRAINED_BLANK_SHARE = 0.85


def build_trained_density_model(model: Path, audio: Path) -> Path:
    """A copy of the random checkpoint whose blank output (id 0) is raised by the bias that
    makes TRAINED_BLANK_SHARE of the frames of the first 20 s of `audio` blank: the forward
    costs the same, the decoding sees a trained model's density of characters."""
    import shutil

    import numpy as np
    from safetensors.torch import load_file, save_file

    from engine.audio import load_audio
    from engine.model import LoadOptions, load_model
    from engine.transcribe import Transcriber

    head = load_audio(audio)[: 20 * SR]
    # named for those 20 s: another --audio-dir (or --uneven) raises the blank by its own bias
    path = CACHE / f"xlsr53-large-random-trained-density-{_digest(head.tobytes())}"
    if (path / "model.safetensors").is_file():
        return path
    print(f"building the trained-density copy in {path} (once) …", flush=True)
    t = Transcriber(load_model(model, LoadOptions(precision="fp32")))
    logits = t.logits([head])[0]
    margin = np.delete(logits, 0, axis=1).max(axis=1) - logits[:, 0]  # blank loses by this
    raise_by = float(np.quantile(margin, TRAINED_BLANK_SHARE))
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(model, partial)
    weights = load_file(partial / "model.safetensors")
    bias = weights["lm_head.bias"].clone()
    bias[0] += raise_by
    weights["lm_head.bias"] = bias
    save_file(weights, partial / "model.safetensors", metadata={"format": "pt"})
    partial.rename(path)
    return path


def build_exports(model: Path, sides: list[str]) -> dict[str, Path]:
    """The exports the chosen sides run, each made once into bench/.cache, named by the
    model they come from (a --density trained run must not time the random model's)."""
    out: dict[str, Path] = {}
    exports = (("onnxruntime", "none"), ("onnxruntime-int8", "int8"), ("tingxie-onnx-int8", "int8"))
    for side, quantize in exports:
        if side in sides:
            from engine.export_onnx import export_onnx

            out[side] = CACHE / f"{model.name}-onnx-{quantize}"
            if not (out[side] / "model.onnx").is_file():
                print(f"exporting to ONNX ({quantize}) in {out[side]} (once) …", flush=True)
                export_onnx(model, out[side], quantize)
    if "ctranslate2-int8" in sides:
        import ctranslate2

        out["ctranslate2-int8"] = path = CACHE / f"{model.name}-ct2-int8"
        if not (path / "model.bin").is_file():
            print(f"converting to CTranslate2 (int8) in {path} (once) …", flush=True)
            converter = ctranslate2.converters.TransformersConverter(str(model))
            converter.convert(str(path), quantization="int8", force=True)
    return out


def _digest(data: bytes) -> str:
    """A short name for what a cached file was built from."""
    return hashlib.sha256(data).hexdigest()[:10]


def build_long_audio(minutes: float, uneven: bool = False, clips_dir: Path = SHARED_AUDIO) -> Path:
    """The clips of `clips_dir`, resampled to 16 kHz and looped with 0.4 s gaps to `minutes`;
    `uneven`: in a random order with gaps of 0.3-1.2 s (seeded), so that the stretches between
    pauses come in many lengths, as in a real recording. Cached under a name that holds a hash
    of the folder and its manifest, so another --audio-dir never gets these clips back."""
    import numpy as np

    from engine.audio import load_audio, write_wav

    manifest = (clips_dir / "manifest.tsv").read_text(encoding="utf-8")
    source = _digest(f"{clips_dir.resolve()}\n{manifest}".encode())
    path = CACHE / f"long-{minutes:g}min{'-uneven' if uneven else ''}-{source}.wav"
    if path.is_file():
        return path
    rows = manifest.splitlines()[1:]
    clips = [load_audio(clips_dir / row.split("\t")[0]) for row in rows if row.strip()]
    rng = np.random.default_rng(0)
    pieces, total, want = [], 0, int(minutes * 60 * SR)
    while total < want:
        for i in rng.permutation(len(clips)) if uneven else range(len(clips)):
            gap = np.zeros(int((rng.uniform(0.3, 1.2) if uneven else 0.4) * SR), np.float32)
            pieces += [clips[i], gap]
            total += len(clips[i]) + len(gap)
    write_wav(path, np.concatenate(pieces)[:want])
    return path


# ---- the sides (each in its own process) ------------------------------------------------


def run_pipeline(model: Path, audio_path: Path, args, best: bool) -> tuple[str, dict]:
    import torch
    from transformers import pipeline

    from engine.audio import load_audio
    from engine.model import pick_dtype

    torch.set_num_threads(_threads())
    kwargs: dict = {"chunk_length_s": args.chunk_seconds, "device": args.device}
    call: dict = {}
    if best:
        kwargs |= {"dtype": pick_dtype("auto", torch.device(args.device))}
        kwargs |= {"stride_length_s": args.stride_seconds}
        call = {"batch_size": _batch_size(args)}
    asr = pipeline("automatic-speech-recognition", model=str(model), **kwargs)
    asr(load_audio(audio_path)[: 2 * SR], **call)  # warm-up (one-time kernel set-up)
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    text = asr(load_audio(audio_path), **call)["text"]
    figures = {"seconds": time.perf_counter() - t0, "cpu_seconds": _cpu_seconds() - cpu0}
    dtype = str(asr.model.dtype).removeprefix("torch.")
    stride = args.stride_seconds if best else args.chunk_seconds / 6
    figures["config"] = (
        f"transformers pipeline, {dtype}, batch {call.get('batch_size', 1)}, "
        f"{args.chunk_seconds:g} s chunks, {stride:g} s strides, "
        f"{asr.model.config._attn_implementation} attention"
    )
    return text, figures


def chunk_agreement(t, audio_path: Path, seconds: float, options) -> float:
    """1 − CER of the chunked text against one pass over the first `seconds` of the file."""
    from engine.audio import load_audio
    from engine.results import Segment

    x = load_audio(audio_path)[: int(seconds * SR)]
    single = "".join(c.text for c in t.chars(t.log_probs([x])[0]))
    chunked = "".join(s.text for s in t.transcribe(x, options)[0] if isinstance(s, Segment))
    return agreement(single, chunked)


def run_tingxie(model: Path, audio_path: Path, args, precision: str) -> tuple[str, dict]:
    import numpy as np
    from profiling import Profile

    import engine.model
    from engine.model import LoadOptions, load_model
    from engine.onnx import OnnxCtcModel
    from engine.results import Segment
    from engine.transcribe import TranscribeOptions, Transcriber

    if args.side == "tingxie-module-encoder":  # this process runs this side alone
        engine.model.channels_last_encoder = lambda encoder: None
    attention = "sdpa" if args.side == "tingxie-sdpa" else "auto"
    loaded = load_model(
        model, LoadOptions(precision=precision, attention=attention, device=args.device)
    )
    t = Transcriber(loaded)
    options = TranscribeOptions(
        chunk_seconds=args.chunk_seconds,
        stride_seconds=args.stride_seconds,
        batch_size=args.batch_size,  # None: Tingxie's default for the device
        cut_at_pauses=args.side != "tingxie-no-cuts",
        skip_silence=args.side != "tingxie-every-sample",
    )
    list(t.transcribe(np.zeros(2 * SR, np.float32), options)[0])  # warm-up
    onnx = loaded.model if isinstance(loaded.model, OnnxCtcModel) else None
    profile = Profile(args.profile, onnx=onnx)
    profile.start()
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    stream, _ = t.transcribe(audio_path, options)
    text = "".join(s.text for s in stream if isinstance(s, Segment))
    figures = {"seconds": time.perf_counter() - t0, "cpu_seconds": _cpu_seconds() - cpu0}
    if args.profile:
        print(f"{args.side}, the whole file: {profile.stop()}", flush=True)
    figures.update(
        config=f"Transcriber, {loaded.precision}, batch {_batch_size(args)}, "
        f"{'cut at pauses, ' if options.cut_at_pauses else ''}"
        f"{'silence skipped, ' if options.cut_at_pauses and options.skip_silence else ''}"
        f"{args.chunk_seconds:g} s chunks, {args.stride_seconds:g} s strides, "
        f"{loaded.attention} attention",
    )
    # After the peak is read: one pass over 60 s holds far more than any chunk.
    figures["after"] = lambda: {
        "chunk_agreement": chunk_agreement(t, audio_path, SINGLE_PASS_SECONDS, options)
    }
    return text, figures


def _forward(side: str, export: Path):
    """(B, T) normalized float32 audio → (B, frames, vocab) logits, on the side's runtime."""
    import numpy as np

    threads = _threads()
    if side.startswith("onnxruntime"):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(
            str(export / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        config = f"onnxruntime {ort.__version__}, {threads} intra-op threads"
        return (lambda x: session.run(["logits"], {"input_values": x})[0]), config
    import ctranslate2

    model = ctranslate2.models.Wav2Vec2(
        str(export), device="cpu", compute_type="int8", intra_threads=threads, inter_threads=1
    )
    config = f"ctranslate2 {ctranslate2.__version__}, int8, {threads} intra threads"

    def forward(x: np.ndarray) -> np.ndarray:
        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(x[:, None, :]))
        return np.asarray(model.encode(features, to_cpu=False))

    return forward, config


def run_peer(model: Path, export: Path, audio_path: Path, args, side: str) -> tuple[str, dict]:
    """A bare runtime behind Tingxie's chunking (see the module docstring)."""
    import numpy as np

    from engine.audio import load_audio
    from engine.chunking import ChunkPlan, FrameGeometry, iter_chunks, join_frames

    config = json.loads((model / "config.json").read_text(encoding="utf-8"))
    vocab = json.loads((model / "vocab.json").read_text(encoding="utf-8"))
    tokens = {i: t for t, i in vocab.items()}
    geometry = FrameGeometry.from_convs(config["conv_kernel"], config["conv_stride"])
    plan = ChunkPlan.from_seconds(args.chunk_seconds, args.stride_seconds, geometry, SR)
    forward, runtime = _forward(side, export)

    def normalized(x: np.ndarray) -> np.ndarray:
        return (x - x.mean()) / np.sqrt(x.var() + 1e-7)

    def transcribe(audio: np.ndarray) -> str:
        chunks, ids = list(iter_chunks([audio], plan)), []
        size = _batch_size(args)
        for i in range(0, len(chunks), size):
            batch = chunks[i : i + size]
            groups: dict[int, list] = {}  # equal lengths run together (the last may be short)
            for c in batch:
                groups.setdefault(len(c.audio), []).append(c)
            for group in groups.values():
                logits = forward(np.stack([normalized(c.audio) for c in group]))
                for c, lg in zip(group, logits, strict=True):
                    ids.extend(join_frames(c, lg).argmax(axis=-1).tolist())
        out, previous = [], None
        for i in ids:  # greedy CTC: collapse repeats, drop the blank (<pad>, id 0) and specials
            if i != previous and tokens.get(i, "<") not in ("<pad>", "<s>", "</s>", "<unk>"):
                out.append(" " if tokens[i] == "|" else tokens[i])
            previous = i
        return "".join(out)

    transcribe(np.zeros(2 * SR, np.float32))  # warm-up
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    text = transcribe(load_audio(audio_path))
    figures = {"seconds": time.perf_counter() - t0, "cpu_seconds": _cpu_seconds() - cpu0}
    figures["config"] = (
        f"{runtime}, batch {_batch_size(args)}, {args.chunk_seconds:g} s chunks, "
        f"{args.stride_seconds:g} s strides"
    )
    return text, figures


def forward_report(args) -> None:
    """--forward-only (see the module docstring)."""
    import numpy as np
    import torch

    from engine.model import LoadOptions, load_model
    from engine.transcribe import Transcriber

    def sync() -> None:
        if args.device == "cuda":
            torch.cuda.synchronize()

    model = build_full_model()
    rng = np.random.default_rng(0)
    arrays = [(rng.normal(size=int(s * SR)) * 0.1).astype(np.float32) for s in (3, 7.5, 12.2, 20)]
    for precision in ("fp32", "auto"):
        t = Transcriber(load_model(model, LoadOptions(device=args.device, precision=precision)))
        m = t.model
        print(
            f"{m.device}, {m.precision}, {m.attention} attention, padded batches: {t.pads_batches}"
        )
        for a, together in zip(arrays, t.log_probs(arrays), strict=True):
            alone = t.log_probs([a])[0]
            print(
                f"  {len(a) / SR:5.1f} s: max |log-prob difference| "
                f"{np.abs(together - alone).max():.5f}, same argmax "
                f"{np.mean(together.argmax(1) == alone.argmax(1)):.4f}"
            )
    for size in (1, 16, 32):
        batch = [arrays[-1]] * size
        t.log_probs(batch)  # warm-up
        sync()
        start = time.perf_counter()
        for _ in range(3):
            t.log_probs(batch)
        sync()
        seconds = (time.perf_counter() - start) / 3
        print(
            f"batch {size:2d} × 20 s: {1000 * seconds:.1f} ms, {20 * size / seconds:.0f}× real time"
        )


def cpu_side_report(args) -> None:
    """--cpu-side (see the module docstring)."""
    import numpy as np

    from engine.model import LoadOptions, load_model
    from engine.results import Segment
    from engine.transcribe import TranscribeOptions, Transcriber

    audio = build_long_audio(args.minutes, True, args.audio_dir)
    t = Transcriber(load_model(build_full_model(), LoadOptions(precision="fp32")))
    rng = np.random.default_rng(0)
    rows = 4000  # frames of the longest chunk and more
    dense = (rng.normal(size=(rows, len(t.silent))) * 3).astype(np.float32)
    sparse = dense.copy()
    sparse[rng.random(rows) < 0.85, t.model.blank_id] += 20
    seconds = args.minutes * 60
    print(f"{seconds:g} s of audio, the model's forward replaced; CPU: {_cpu_name()}")
    for name, table in (("random weights' density", dense), ("a trained model's", sparse)):
        table -= np.log(np.exp(table).sum(1, keepdims=True))
        t.log_probs = lambda batch, table=table: [
            table[: t.geometry.frames(len(a))].copy() for a in batch
        ]
        for ahead in (0, 2):
            t.read_ahead = ahead
            start = time.perf_counter()
            stream, _ = t.transcribe(audio, TranscribeOptions(batch_size=16))
            chars = sum(len(s.chars) for s in stream if isinstance(s, Segment))
            wall = time.perf_counter() - start
            print(
                f"  {name}, read-ahead {ahead}: {wall:.1f} s, {seconds / wall:.0f}× real time "
                f"({chars / seconds:.1f} characters a second)"
            )


def _batch_size(args) -> int:
    """--batch-size, else Tingxie's default for the device."""
    from engine.transcribe import default_batch_size

    return args.batch_size or default_batch_size(args.device)


def worker(args: argparse.Namespace) -> None:
    """One side, in its own process; writes its figures as JSON."""
    from engine.audio import probe

    if args.device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()
    with PeakRss() as mem:
        if args.side.startswith("pipeline"):
            text, figures = run_pipeline(args.model, args.audio, args, args.side == "pipeline-best")
        elif args.side.startswith("tingxie"):
            precision = "fp32" if args.side == "tingxie-fp32" else "auto"
            model = args.export if args.side == "tingxie-onnx-int8" else args.model
            text, figures = run_tingxie(model, args.audio, args, precision)
        else:
            text, figures = run_peer(args.model, args.export, args.audio, args, args.side)
    if "after" in figures:
        figures.update(figures.pop("after")())
    figures.update(
        side=args.side,
        text=text,
        audio_seconds=probe(args.audio).duration,
        peak_rss_mb=mem.peak / 2**20,
        threads=_threads(),
    )
    if args.device == "cuda":
        import torch

        figures |= {
            "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20,
            "gpu": torch.cuda.get_device_name(),
        }
    args.result.write_text(json.dumps(figures, ensure_ascii=False), encoding="utf-8")


def run_side(side: str, model: Path, export: Path | None, audio: Path, args) -> dict:
    result = CACHE / f"result-{side}.json"
    result.unlink(missing_ok=True)
    cmd = [
        sys.executable, __file__, "--side", side, "--model", str(model), "--audio", str(audio),
        "--result", str(result), "--chunk-seconds", str(args.chunk_seconds),
        "--stride-seconds", str(args.stride_seconds), "--device", args.device,
    ]  # fmt: skip
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    if args.profile:
        cmd += ["--profile"]
    if export is not None:
        cmd += ["--export", str(export)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if side in ("pipeline", "tingxie-onednn-caches"):  # not the sizes importing engine sets
        env |= {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "1024", "LRU_CACHE_CAPACITY": "1024"}
    print(f"running {side} …", flush=True)
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    return json.loads(result.read_text(encoding="utf-8"))


def agreement(reference: str, hypothesis: str) -> float:
    import jiwer

    # the pipeline's text keeps <unk> and spaces (word delimiters); Tingxie emits neither
    ref, hyp = (re.sub(r"<[^>]*>|\s", "", t) for t in (reference, hypothesis))
    return max(0.0, 1 - jiwer.cer(ref, hyp)) if ref else float(not hyp)


def report(results: list[dict]) -> None:
    first = results[0]
    base = next((r for r in results if r["side"] == "pipeline"), first)
    w = max(17, *(len(r["side"]) + 1 for r in results))
    peers = [r for r in results if not r["side"].startswith("tingxie")]
    best = min(peers, key=lambda r: r["seconds"]) if peers else base
    print()
    print(
        f"audio: {first['audio_seconds']:.1f} s; CPU: {_cpu_name()}, {os.cpu_count()} cores; "
        f"threads per side: {first['threads']}; load average at the end: "
        f"{os.getloadavg()[0]:.1f}"
    )
    for r in results:
        print(f"  {r['side']:<{w}} {r['config']}")
    print(
        f"{'side':<{w}}{'wall s':>7}{'RTF':>7}{'CPU s':>7}{'×pipeline':>10}{'×best peer':>11}"
        f"{'peak MB':>8}{'chars':>6}{'agree':>7}"
    )
    for r in results:
        vs_base = (
            f"{base['seconds'] / r['seconds']:.2f}/{base['cpu_seconds'] / r['cpu_seconds']:.2f}"
        )
        vs_best = (
            f"{best['seconds'] / r['seconds']:.2f}/{best['cpu_seconds'] / r['cpu_seconds']:.2f}"
        )
        print(
            f"{r['side']:<{w}}{r['seconds']:7.1f}{r['seconds'] / r['audio_seconds']:7.3f}"
            f"{r['cpu_seconds']:7.1f}{vs_base:>10}{vs_best:>11}{r['peak_rss_mb']:8.0f}"
            f"{len(''.join(r['text'].split())):6d}{agreement(first['text'], r['text']):7.3f}"
        )
    print(
        f"×pipeline / ×best peer: throughput (wall / CPU time) relative to the pipeline at its "
        f"defaults and to the fastest peer ({best['side']}), higher is faster; agree: 1 − CER "
        f"against {first['side']}'s text"
    )
    if len(first.get("rounds", ())) > 1:
        for r in results:
            walls = ", ".join(f"{x:.1f}" for x in r["rounds"])
            peaks = ", ".join(f"{x:.0f}" for x in r["round_peaks"])
            print(
                f"{r['side']}: wall s per round {walls}; the table shows the median; "
                f"peak MB per round {peaks}; the table shows the highest"
            )
    for r in results:
        if "chunk_agreement" in r:
            print(
                f"{r['side']}: chunked vs one-pass text on the first {SINGLE_PASS_SECONDS:g} s: "
                f"{r['chunk_agreement']:.3f} (1 − CER)"
            )
    if "peak_gpu_mb" in first:
        print(f"\nGPU: {first['gpu']}")
        print(f"{'side':<{w}}{'× real time':>12}{'peak GPU MB':>12}")
        for r in results:
            speed = r["audio_seconds"] / r["seconds"]
            print(f"{r['side']:<{w}}{speed:12.0f}{r['peak_gpu_mb']:12.0f}")
    # The issue's last line, for each Tingxie side against the pipeline at its defaults (the
    # default side, `tingxie`, last).
    ours = sorted((r for r in results if r["side"].startswith("tingxie")),
                  key=lambda r: r["side"] == "tingxie")  # fmt: skip
    if base["side"] == "pipeline":
        for r in ours:
            print(
                f"throughput vs pipeline: {base['seconds'] / r['seconds']:.2f}× wall, "
                f"{base['cpu_seconds'] / r['cpu_seconds']:.2f}× CPU; peak MB: {r['side']} "
                f"{r['peak_rss_mb']:.0f}, pipeline {base['peak_rss_mb']:.0f}"
            )


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, each checked here, before the model or the audio is built."""
    from engine.cli import positive_int

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=positive_number, default=1.0, help="length of the test file")
    p.add_argument(
        "--uneven",
        action="store_true",
        help="the clips in a random order with gaps of 0.3-1.2 s (the stretches between pauses "
        "in many lengths, as in a real recording; 0.4 s gaps otherwise)",
    )
    p.add_argument(
        "--chunk-seconds", type=positive_number, default=20.0, help="chunk length, every side"
    )
    p.add_argument(
        "--stride-seconds",
        type=positive_number,
        default=1.5,
        help="strides, every side but pipeline; the chunk must exceed twice the stride",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        help="chunks per forward pass (default: Tingxie's for the device, 4 on a CPU, 16 on a GPU)",
    )
    p.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="where the pipeline and Tingxie sides run (the bare runtimes stay on the CPU)",
    )
    p.add_argument(
        "--forward-only", action="store_true", help="the model's forward alone (see above)"
    )
    p.add_argument(
        "--cpu-side", action="store_true", help="everything but the model's forward (see above)"
    )
    p.add_argument(
        "--audio-dir",
        type=Path,
        default=SHARED_AUDIO,
        help="the real clips and their manifest.tsv (default: ../shared/audio)",
    )
    p.add_argument(
        "--rounds",
        type=positive_int,
        default=1,
        help="run the sides this many times, interleaved, and report each one's median (a "
        "shared CPU's speed drifts by 2x between minutes)",
    )
    p.add_argument(
        "--sides",
        default=",".join(DEFAULT_SIDES),
        help=f"comma-separated, in order; of {', '.join(SIDES)}",
    )
    p.add_argument(
        "--density",
        choices=("random", "trained"),
        default="random",
        help="characters a frame: the random weights' (nearly every frame), or a trained "
        f"model's ({TRAINED_BLANK_SHARE:.0%}% of frames blank: the blank's bias raised)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="torch.profiler over the Tingxie sides' file, and ONNX Runtime's own profiler where "
        "the side runs an int8 copy (bench/profiling.py; slower, so the figures of such a run "
        "are not the bench's)",
    )
    p.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    p.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--export", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    checked_chunks(p, args.chunk_seconds, args.stride_seconds)
    if not (args.side or args.forward_only or (args.audio_dir / "manifest.tsv").is_file()):
        p.error(
            f"--audio-dir {args.audio_dir}: no manifest.tsv there; give the folder of the clips "
            "and their manifest.tsv"
        )
    return args


def checked_chunks(p: argparse.ArgumentParser, chunk: float, stride: float) -> None:
    """Refuse a chunk and stride that the engine's TranscribeOptions refuses (its rule, checked
    by it), naming both options, before any model is built: the Tingxie sides' workers refused
    them only after the model's build, and the pipeline read --chunk-seconds 0 as no chunks."""
    from engine.transcribe import TranscribeOptions

    try:
        TranscribeOptions(chunk_seconds=chunk, stride_seconds=stride)
    except ValueError as e:
        p.error(f"--chunk-seconds {chunk:g} / --stride-seconds {stride:g}: {e}")


def main() -> None:
    sys.path.insert(0, str(ROOT))
    args = parse_args()
    if args.side:
        worker(args)
        return
    if args.forward_only:
        forward_report(args)
        return
    if args.cpu_side:
        cpu_side_report(args)
        return
    sides = args.sides.split(",")
    unknown = set(sides) - set(SIDES)
    if unknown:
        sys.exit(f"--sides: unknown {', '.join(sorted(unknown))}; choose from {', '.join(SIDES)}")
    CACHE.mkdir(parents=True, exist_ok=True)
    model, audio = build_full_model(), build_long_audio(args.minutes, args.uneven, args.audio_dir)
    if args.density == "trained":
        model = build_trained_density_model(model, audio)
        print(f"model: {model.name} (the blank's bias raised: a trained model's density)")
    exports = build_exports(model, sides)
    rounds = [
        [run_side(side, model, exports.get(side), audio, args) for side in sides]
        for _ in range(args.rounds)
    ]
    report([median_of(runs) for runs in zip(*rounds, strict=True)])


def median_of(runs: Sequence[dict]) -> dict:
    """One side's figures over the rounds: median wall and CPU seconds, the highest peak; text
    and the rest from the first round."""
    merged = dict(runs[0])
    for key in ("seconds", "cpu_seconds"):
        merged[key] = statistics.median(r[key] for r in runs)
    merged["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    merged["rounds"] = [r["seconds"] for r in runs]
    merged["round_peaks"] = [r["peak_rss_mb"] for r in runs]
    return merged


if __name__ == "__main__":
    main()
