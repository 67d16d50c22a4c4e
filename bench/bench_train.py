"""Training speed of Tingxie's tuning job against a Hugging Face `Trainer` at its documented best,
on the same audio, in one run.

    .venv/bin/python bench/bench_train.py                     # small model, 32 clips, 3 epochs
    .venv/bin/python bench/bench_train.py --clips 96 --repeat 2
    python bench/bench_train.py --device cuda --size full --clips 512 --clip-chars 20,100 \
        --char-seconds 0.1 --batch 16 --micro-seconds 120 --variants hf,hf-ckpt,tingxie  # GPU

Builds a random wav2vec2 checkpoint and a synthetic tone corpus of uneven lengths (cached in
bench/.cache/), then trains each side on the same audio, each in its own subprocess (clean peak
memory), for the same number of epochs (every utterance seen --epochs times):

- hf: `Trainer` set up as transformers' `run_speech_recognition_ctc.py` and its documented
  commands do: features and labels prepared per example by the processor, its
  `DataCollatorCTCWithPadding`, the script's model overrides (mask_time_prob 0.05, layerdrop 0,
  feature encoder frozen), length-grouped batches (`--group_by_length`, in transformers 5
  `train_sampling_strategy="group_by_length"`), fp32 on CPU, AdamW with linear decay;
- tingxie: `run_job` with the same trainable weights (full, feature encoder frozen), learning
  rate, warmup and audio per step on average, length-grouped micro-batches, features of the
  frozen encoder cached once;
- tingxie-nocache: the same without the feature cache (what a job whose encoder trains gets);
- tingxie-bf16 (unless --skip-bf16): the cached run under bf16 autocast;
- hf-ckpt: the baseline with the documented command's --gradient_checkpointing (less memory,
  recomputed activations).

With --device cuda every side runs on the GPU: the baseline in bf16 (the documented command's
--fp16, in the half precision that needs no loss scaling where the GPU has it), Tingxie at its
automatic precision (the same); the table adds each side's peak GPU memory
(torch.cuda.max_memory_allocated), and the ratios use it.

Both sides train the same clips: those the job keeps (its default min_seconds and max_seconds,
0.3-30 s); the output says how many of the corpus's are left out, when any are.

The clock runs from loading the model to the end of the last step: everything a user waits for
(the processor pass over the data, the audio decode, the feature cache) except imports and the
final save. Each variant runs --repeat times, interleaved, and its fastest run counts (other
processes on a shared machine only ever slow a run down).

With --memory, instead: peak resident memory of a short job (a few steps of the tiny model, the
settings a user gets by default: LoRA, encoder features cached, 10 % held out) on 1 h, 5 h and
20 h of synthetic tone audio (16-bit WAV, 2.3 GB for 20 h, written to bench/.cache/ and removed
afterwards), each in a fresh process (its own VmHWM), the peak less the memory before the job
(what the job added), and the ratios 20 h / 1 h of both (target: the peak's within 10 %):

    .venv/bin/python bench/bench_train.py --memory
    .venv/bin/python bench/bench_train.py --memory --hours 0.1,0.5   # a quick look

Prints each variant's configuration, then per variant: audio seconds and utterances seen,
set-up seconds (model, data and feature cache, before the first step) and step seconds,
utterances per second over the whole wait (wall and CPU time; CPU time is steadier when other
processes share the machine), peak resident memory added, padding, and the mean loss over each
quarter of the audio the shortest run saw, so that losses compare at equal audio; then the
ratios against the first variant (hf).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache"
sys.path.insert(0, str(ROOT))

CORPUS_CHARS = "的一是不了人我在有他这中"
SR = 16_000
VARIANTS = ("hf", "tingxie", "tingxie-nocache", "tingxie-bf16")
OPTIONAL_VARIANTS = ("hf-ckpt",)
QUARTERS = 4  # loss reported as the mean over each quarter of the audio seen
# --memory corpus: clips of 40-150 characters, each 0.1 s of tone and 0.03 s of gap (5-20 s)
SCALE_CHARS, SCALE_CHAR_SECONDS = (40, 150), 0.1


class PeakRss:
    """Samples this process's resident memory every 10 ms between start() and stop()."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.start_rss = self.peak = 0
        self._stop = threading.Event()

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._rss())

    def start(self) -> None:
        self.start_rss = self.peak = self._rss()
        threading.Thread(target=self._run, daemon=True).start()

    def stop(self) -> int:
        """Bytes above the starting resident memory at the peak."""
        self._stop.set()
        return self.peak - self.start_rss


class Clock:
    """Wall and CPU time since start(), and a trace of (audio seconds, utterances, loss) per
    step; on `device` "cuda", the peak GPU memory too (None on "cpu", even on a CUDA host)."""

    _PROFILE_FROM = 2  # steps before the profile (--profile-steps) starts: warm-up

    def __init__(self, profile_steps: int = 0, device: str = "cpu") -> None:
        from profiling import Profile

        self.gpu = device == "cuda"
        self.rss = PeakRss()
        self.trace: list[tuple[float, int, float]] = []
        self.setup: float | None = None
        self.pending = (0.0, 0)  # the batch being trained: audio seconds, utterances
        self.profile, self.profile_steps = Profile(profile_steps > 0), profile_steps
        self.profile_report = ""

    def start(self) -> None:
        import torch

        if self.gpu:
            torch.cuda.reset_peak_memory_stats()
        self.rss.start()
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    def first_step(self, running: float = 0.0) -> None:
        """The first step begins (`running` seconds ago)."""
        if self.setup is None:
            self.setup = time.perf_counter() - self.wall0 - running

    def step(self, audio_seconds: float, utterances: int, loss: float) -> None:
        self.trace.append((audio_seconds, utterances, loss))
        if len(self.trace) == self._PROFILE_FROM:
            self.profile.start()
        elif len(self.trace) == self._PROFILE_FROM + self.profile_steps:
            self.profile_report = self._profile_text()

    def _profile_text(self) -> str:
        """The profile headed by the steps it covers: a run may end before the last step
        --profile-steps asks for, or before the first ("" without --profile-steps)."""
        if not self.profile_steps:
            return ""
        last = min(len(self.trace), self._PROFILE_FROM + self.profile_steps)
        if last <= self._PROFILE_FROM:
            return (
                f"no profile: the run ended after {last} step(s), before step "
                f"{self._PROFILE_FROM + 1}"
            )
        return f"steps {self._PROFILE_FROM + 1}-{last}: {self.profile.stop()}"

    def result(self, padding: float) -> dict:
        import torch

        gpu = torch.cuda.max_memory_allocated() if self.gpu else None
        return dict(
            wall=time.perf_counter() - self.wall0, cpu=time.process_time() - self.cpu0,
            setup=self.setup, peak=self.rss.stop(), trace=self.trace, padding=padding,
            gpu_peak=gpu, profile=self.profile_report or self._profile_text(),
        )  # fmt: skip


def prepare(args) -> tuple[Path, Path, str]:
    """The model, the manifest both sides train on, and a note on the clips it leaves out ("" for
    none)."""
    from engine.testmodels import build_model
    from engine.tune.testdata import tone_corpus

    lo, hi = args.clip_chars
    shape = (
        "" if (lo, hi, args.char_seconds) == (2, 14, 0.12) else f"-{lo}-{hi}-{args.char_seconds:g}"
    )
    folder = CACHE / f"train-{args.size}-{args.clips}{shape}"
    model_dir, manifest = folder / "model", folder / "data" / "manifest.tsv"
    if not (model_dir / "config.json").is_file():
        build_model(model_dir, args.size)
    if not manifest.is_file():
        tone_corpus(
            folder / "data", args.clips, chars=CORPUS_CHARS, min_chars=lo, max_chars=hi,
            char_seconds=args.char_seconds, seed=0,
        )  # fmt: skip
    return model_dir, *trained_manifest(manifest)


def _job_bounds() -> tuple[float, float]:
    """The job's default min_seconds and max_seconds: it skips clips outside them."""
    from engine.tune.config import TuneConfig

    defaults = {f.name: f.default for f in dataclasses.fields(TuneConfig)}
    return defaults["min_seconds"], defaults["max_seconds"]


def trained_manifest(manifest: Path) -> tuple[Path, str]:
    """The rows the Tingxie job trains on (within its min_seconds..max_seconds), as the manifest
    both sides read, so that they train the same audio (and the job's plan, replayed per step,
    is the plan it runs); and a note on the rows left out ("" for none)."""
    lo, hi = _job_bounds()
    lengths = _lengths(manifest)
    keep = [k for k, n in enumerate(lengths) if lo <= n / SR <= hi]
    if len(keep) == len(lengths):
        return manifest, ""
    if not keep:
        raise SystemExit(
            f"every clip of {manifest} lies outside the job's {lo:g}-{hi:g} s: change "
            "--clip-chars or --char-seconds (a clip lasts 1.3 × --char-seconds a character)"
        )
    note = (
        f"{len(lengths) - len(keep)} of {len(lengths)} clips left out of every side: outside the "
        f"job's min_seconds {lo:g} s .. max_seconds {hi:g} s"
    )
    return _manifest_subset(manifest, keep, manifest.with_name("manifest-trained.tsv")), note


def _manifest_subset(manifest: Path, rows: Iterable[int], out: Path) -> Path:
    """`out`, beside `manifest`, holding its header and the rows at indices `rows`."""
    header, *lines = manifest.read_text(encoding="utf-8").splitlines()
    out.write_text("\n".join([header, *(lines[k] for k in rows)]) + "\n", encoding="utf-8")
    return out


def _lengths(manifest: Path) -> list[int]:
    import soundfile as sf

    from engine.tune.data import from_manifest

    return [sf.info(e.audio).frames for e in from_manifest(manifest).examples]


# ---- the baseline: run_speech_recognition_ctc.py's setup ------------------------------


# the batch's (audio seconds, utterances), carried in it from the collator to the step that
# trains it: the data loader collates a batch ahead of the one training
_TRACE = "bench_trace"


def _hf_collator(processor):
    import torch

    class DataCollatorCTCWithPadding:
        """As in run_speech_recognition_ctc.py: pad inputs and labels separately. Also notes
        each batch's audio for the trace, under _TRACE."""

        def __call__(self, features):
            inputs = [{"input_values": f["input_values"]} for f in features]
            labels = [{"input_ids": f["labels"]} for f in features]
            batch = processor.pad(input_features=inputs, padding=True, return_tensors="pt")
            label_batch = processor.pad(labels=labels, padding=True, return_tensors="pt")
            labels = label_batch["input_ids"].masked_fill(label_batch.attention_mask.ne(1), -100)
            batch["labels"] = labels
            if "attention_mask" in batch:
                batch["attention_mask"] = batch["attention_mask"].to(torch.long)
            batch[_TRACE] = (sum(len(f["input_values"]) for f in features) / SR, len(features))
            return batch

    return DataCollatorCTCWithPadding()


def run_hf(model_dir: Path, manifest: Path, args, checkpointing: bool) -> dict:
    import torch
    from transformers import (
        AutoModelForCTC,
        AutoProcessor,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from engine.tune.batching import padding_fraction
    from engine.tune.data import from_manifest, load_example_audio

    clock = Clock(args.profile_steps, args.device)
    clock.start()
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForCTC.from_pretrained(
        model_dir,
        mask_time_prob=0.05,
        layerdrop=0.0,
        ctc_loss_reduction="mean",
        pad_token_id=processor.tokenizer.pad_token_id,
        vocab_size=len(processor.tokenizer),
        ctc_zero_infinity=True,
    )
    model.freeze_feature_encoder()
    examples = from_manifest(manifest).examples
    dataset = [
        {
            "input_values": processor(load_example_audio(e), sampling_rate=SR).input_values[0],
            "labels": processor(text=e.text).input_ids,
        }
        for e in examples
    ]

    class TracedTrainer(Trainer):
        def training_step(self, model, inputs, *more, **named):
            clock.pending = inputs.pop(_TRACE)  # the batch this step trains
            return super().training_step(model, inputs, *more, **named)

    class Trace(TrainerCallback):
        def on_step_begin(self, *a, **k):
            clock.first_step()

        def on_log(self, _args, state, control, logs=None, **k):
            if logs and "loss" in logs:
                clock.step(*clock.pending, logs["loss"])

    steps = math.ceil(args.epochs * len(dataset) / args.batch)
    gpu = args.device == "cuda"
    half = gpu and torch.cuda.is_bf16_supported()
    fields = TrainingArguments.__dataclass_fields__
    grouping = (  # the flag's name in transformers 5, and before it
        {"train_sampling_strategy": "group_by_length"}
        if "train_sampling_strategy" in fields
        else {"group_by_length": True}
    )
    training_args = TrainingArguments(
        output_dir=str(CACHE / "hf-trainer-out"),
        per_device_train_batch_size=args.batch,
        max_steps=steps,
        learning_rate=args.lr,
        warmup_steps=args.warmup,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=not gpu,
        bf16=half,
        fp16=gpu and not half,
        gradient_checkpointing=checkpointing,
        seed=0,
        disable_tqdm=True,
        **grouping,
    )
    trainer = TracedTrainer(
        model=model,
        args=training_args,
        data_collator=_hf_collator(processor),
        train_dataset=dataset,
        processing_class=processor,
        callbacks=[Trace()],
    )
    torch.manual_seed(0)
    trainer.train()
    lengths = [len(d["input_values"]) for d in dataset]
    batches = list(trainer.get_train_dataloader().batch_sampler)
    return clock.result(padding_fraction(batches, lengths)) | dict(
        config=f"Trainer, group_by_length, batch {args.batch} utt, "
        f"{'bf16' if half else 'fp16' if gpu else 'fp32'}, "
        f"{'gradient checkpointing, ' if checkpointing else ''}{steps} steps"
    )


# ---- Tingxie ------------------------------------------------------------------------------


def tingxie_steps(lengths: list[int], args) -> tuple[int, float]:
    """Steps for about --epochs of audio, and the audio per step (the baseline's on average)."""
    from engine.tune.batching import Cursor, steps_from

    step_seconds = args.batch * sum(lengths) / len(lengths) / SR
    want, seen, steps = args.epochs * sum(lengths), 0, 0
    plan = steps_from(
        Cursor(0, 0), lengths, max_batch_samples=int(args.micro_seconds * SR),
        step_samples=int(step_seconds * SR), seed=0,
    )  # fmt: skip
    while True:  # the step count whose audio comes closest to the baseline's
        more = sum(lengths[i] for batch in next(plan).micro_batches for i in batch)
        if seen + more - want >= want - seen and steps:
            return steps, step_seconds
        seen, steps = seen + more, steps + 1


def run_tingxie(model_dir: Path, manifest: Path, args, precision: str, cache: bool) -> dict:
    import shutil

    # The job imports these lazily; imported here, they stay out of the clock and the peak, as
    # the baseline's imports do.
    from accelerate import Accelerator  # noqa: F401
    from transformers import AutoModelForCTC, AutoProcessor  # noqa: F401

    from engine.tune.batching import Cursor, steps_from
    from engine.tune.config import TuneConfig
    from engine.tune.events import JobFailed, JobStarted, StepProgress
    from engine.tune.loop import run_job

    out = CACHE / f"tingxie-out-{precision}-{cache}"
    shutil.rmtree(out, ignore_errors=True)
    lengths = _lengths(manifest)
    steps, step_seconds = tingxie_steps(lengths, args)
    config = TuneConfig(
        model=str(model_dir),
        data=str(manifest),
        output_dir=str(out),
        method="full",
        freeze_feature_encoder=True,
        steps=steps,
        learning_rate=args.lr,
        warmup_steps=args.warmup,
        batch_seconds=step_seconds,
        micro_batch_seconds=args.micro_seconds,
        mask_time_prob=0.05,
        heldout_fraction=0.0,
        eval_every=0,
        save_every=0,
        precision=precision,
        cache_features=cache,
        device=args.device,
    )
    # the job's own plan, replayed for each step's audio (the job reports utterances only)
    plan = steps_from(
        Cursor(0, 0), lengths, max_batch_samples=int(args.micro_seconds * SR),
        step_samples=int(step_seconds * SR), seed=config.seed,
    )  # fmt: skip
    clock = Clock(args.profile_steps, args.device)
    clock.start()
    for event in run_job(config):
        if isinstance(event, JobStarted):
            padding, used = event.padding_fraction, event.precision
        elif isinstance(event, StepProgress):
            clock.first_step(running=event.seconds)  # the job reports steps as they end
            batches = next(plan).micro_batches
            assert sum(map(len, batches)) == event.examples, "the replayed plan drifted"
            audio = sum(lengths[i] for b in batches for i in b) / SR
            clock.step(audio, event.examples, event.loss)
            if event.step == steps:
                result = clock.result(padding)
        elif isinstance(event, JobFailed):
            raise SystemExit(event.message)
    cached = "encoder features cached" if cache else "no feature cache"
    return result | dict(
        config=f"run_job, {step_seconds:.1f} s audio/step, {cached}, {used}, {steps} steps"
    )


# ---- memory at scale -------------------------------------------------------------------


def scale_corpus(folder: Path, hours: list[float]) -> dict[float, Path]:
    """One tone corpus of max(hours) and a manifest per size holding its first clips, so the
    smaller sets cost no more disk."""
    import soundfile as sf

    from engine.tune.testdata import tone_corpus

    lo, hi = SCALE_CHARS
    clip_seconds = (lo + hi) / 2 * 1.3 * SCALE_CHAR_SECONDS  # tone + 30 % gap per character
    clips = math.ceil(max(hours) * 3600 / clip_seconds * 1.05) + 10
    manifest = tone_corpus(
        folder, clips, chars=CORPUS_CHARS, min_chars=lo, max_chars=hi,
        char_seconds=SCALE_CHAR_SECONDS, seed=0,
    )  # fmt: skip
    _, *rows = manifest.read_text(encoding="utf-8").splitlines()
    seconds = itertools.accumulate(sf.info(folder / row.split("\t")[0]).duration for row in rows)
    ends = list(seconds)
    manifests = {}
    for h in hours:
        count = next((k + 1 for k, end in enumerate(ends) if end >= h * 3600), None)
        if count is None:
            raise SystemExit(f"the corpus holds {ends[-1] / 3600:.2f} h, short of {h} h")
        manifests[h] = _manifest_subset(manifest, range(count), folder / f"manifest-{h:g}h.tsv")
    return manifests


def run_memory(model_dir: Path, manifest: Path, args) -> dict:
    """A short job with the defaults a user gets (LoRA, features cached, 10 % held out, CER
    before and after); this process's resident memory before it and its peak (imports
    included), in MB. The peak is VmHWM, this address space's own: getrusage's ru_maxrss
    carries the spawning bench's high-water mark across fork and exec on Linux."""
    from bench_app import memory_mb  # VmRSS and VmHWM from /proc/self/status

    from engine.tune.config import TuneConfig
    from engine.tune.events import JobFailed, JobStarted
    from engine.tune.loop import run_job

    out = manifest.parent / f"job-{manifest.stem}"
    shutil.rmtree(out, ignore_errors=True)
    config = TuneConfig(
        model=str(model_dir), data=str(manifest), output_dir=str(out), steps=args.memory_steps,
        eval_every=0, save_every=0, device="cpu", precision="fp32",
    )  # fmt: skip
    start, started = memory_mb()["VmRSS"], time.perf_counter()
    for event in run_job(config):
        if isinstance(event, JobStarted):
            setup = time.perf_counter() - started
            utterances = event.train_examples + event.heldout_examples
            store = sum(f.stat().st_size for f in (out / "cache").rglob("*") if f.is_file())
        elif isinstance(event, JobFailed):
            raise SystemExit(event.message)
    peak = memory_mb()["VmHWM"]
    shutil.rmtree(out, ignore_errors=True)
    return dict(
        utterances=utterances, setup=setup, wall=time.perf_counter() - started, store=store,
        start=start, peak=peak,
    )  # fmt: skip


def memory_row(hours: float, r: dict) -> str:
    """One size's line of the --memory table (`r`: run_memory's result)."""
    return (
        f"{hours:6g}{r['utterances']:7d}{r['setup']:9.1f}{r['wall']:8.1f}{r['store'] / 1e9:10.2f}"
        f"{r['start']:10.0f}{r['peak']:9.0f}{r['peak'] - r['start']:10.0f}"
    )


def memory_summary(hours: list[float], results: list[dict]) -> str:
    """The largest size over the smallest: the peak, and the peak less the memory before the
    job (what the job itself added, imports left out)."""
    first, last = results[0], results[-1]
    first_added = first["peak"] - first["start"]
    added = f"{(last['peak'] - last['start']) / first_added:.3f}" if first_added > 0 else "n/a"
    return (
        f"peak RSS {hours[-1]:g} h / {hours[0]:g} h: {last['peak'] / first['peak']:.3f} "
        f"(target ≤ 1.10); added {hours[-1]:g} h / {hours[0]:g} h: {added}"
    )


def memory_report(args) -> None:
    """Build the corpus, measure each size in a process of its own, print, clean up."""
    from engine.testmodels import build_model

    hours = args.hours
    CACHE.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="memory-", dir=CACHE))
    load = os.getloadavg()[0]
    try:
        model_dir = build_model(folder / "model", "tiny")
        started = time.perf_counter()
        manifests = scale_corpus(folder / "data", hours)
        print(f"corpus of {max(hours):g} h written in {time.perf_counter() - started:.0f} s")
        print(
            f"peak resident memory of a {args.memory_steps}-step job (tiny model, LoRA, encoder "
            "features cached, 10 % held out), each in its own process; CPU: "
            f"{_cpu_name()}, {os.cpu_count()} cores; load average {load:.1f} before"
        )
        print(f"{'hours':>6}{'utt':>7}{'setup s':>9}{'wall s':>8}{'store GB':>10}"
              f"{'start MB':>10}{'peak MB':>9}{'added MB':>10}", flush=True)  # fmt: skip
        results = []
        for h in hours:  # each row as it is measured: the 20 h job takes a while
            results.append(spawn("memory", model_dir, manifests[h], args))
            print(memory_row(h, results[-1]), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{memory_summary(hours, results)}; load average {os.getloadavg()[0]:.1f} after")


# ---- driver ---------------------------------------------------------------------------


def child(args) -> None:
    model_dir, manifest = Path(args.model_dir), Path(args.manifest)
    if args.child == "memory":
        result = run_memory(model_dir, manifest, args)
    elif args.child.startswith("hf"):
        result = run_hf(model_dir, manifest, args, checkpointing=args.child == "hf-ckpt")
    else:
        automatic = "auto" if args.device == "cuda" else "fp32"  # CPU: fp32 unless -bf16
        precision = "bf16" if args.child.endswith("bf16") else automatic
        result = run_tingxie(model_dir, manifest, args, precision, "nocache" not in args.child)
    print("RESULT " + json.dumps(result))


def spawn(variant: str, model_dir: Path, manifest: Path, args) -> dict:
    command = [
        sys.executable, __file__, "--child", variant, "--model-dir", str(model_dir),
        "--manifest", str(manifest), "--epochs", str(args.epochs), "--batch", str(args.batch),
        "--lr", str(args.lr), "--warmup", str(args.warmup),
        "--micro-seconds", str(args.micro_seconds), "--memory-steps", str(args.memory_steps),
        "--device", args.device, "--profile-steps", str(args.profile_steps),
    ]  # fmt: skip
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"{variant} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def quarter_losses(trace: list, total: float) -> list[float]:
    """Mean step loss over each quarter of `total` audio seconds (steps by where they end)."""
    import numpy as np

    ends = np.cumsum([t[0] for t in trace])
    losses = np.array([t[2] for t in trace])
    edges = np.linspace(0, total, QUARTERS + 1)
    out = []
    for lo, hi in itertools.pairwise(edges):
        inside = (ends > lo) & (ends <= hi + 1e-6)
        out.append(float(losses[inside].mean()) if inside.any() else float("nan"))
    return out


def _gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name()


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def print_report(results: dict[str, dict], args, note: str) -> None:
    """The table and the ratios; exits non-zero when no variant finished (`note`: prepare's
    on the clips left out)."""
    if not results:
        raise SystemExit("no variant finished: see the failures above")
    seen = {name: sum(t[0] for t in r["trace"]) for name, r in results.items()}
    common = min(seen.values())
    gpu = all(r.get("gpu_peak") is not None for r in results.values())
    where = f"GPU: {_gpu_name()}; " if gpu else ""
    print(
        f"\n{args.epochs:g} epoch(s) of {args.clips} clips ({args.size} model); {where}CPU: "
        f"{_cpu_name()}, {os.cpu_count()} cores; load average now {os.getloadavg()[0]:.1f}"
    )
    if note:
        print(note)
    for name, r in results.items():
        print(f"  {name}: {r['config']}")
    print(
        f"{'':16}{'audio s':>8}{'utt':>5}{'setup s':>8}{'steps s':>8}{'wall s':>7}{'utt/s':>7}"
        f"{'utt/s CPU':>10}"
        f"{'peak MB':>8}{'GPU MB' if gpu else '':>8}{'pad %':>6}  loss per quarter of the "
        f"first {common:.0f} s of audio"
    )

    def rate(r: dict, clock: str) -> float:
        return sum(t[1] for t in r["trace"]) / r[clock]

    for name, r in results.items():
        utterances = sum(t[1] for t in r["trace"])
        quarters = "  ".join(f"{x:6.2f}" for x in quarter_losses(r["trace"], common))
        gpu_mb = f"{r['gpu_peak'] / 2**20:.0f}" if gpu else ""
        print(
            f"{name:16}{seen[name]:8.0f}{utterances:5d}{r['setup']:8.1f}"
            f"{r['wall'] - r['setup']:8.1f}{r['wall']:7.1f}"
            f"{rate(r, 'wall'):7.2f}{rate(r, 'cpu'):10.2f}{r['peak'] / 2**20:8.0f}{gpu_mb:>8}"
            f"{100 * r['padding']:6.1f}  {quarters}"
        )
    memory = "gpu_peak" if gpu else "peak"
    for base_name, base in results.items():
        if not base_name.startswith("hf"):
            continue
        for name, r in results.items():
            if not name.startswith("hf"):
                print(
                    f"{name} / {base_name}: utt/s ×{rate(r, 'wall') / rate(base, 'wall'):.2f} "
                    f"(wall), ×{rate(r, 'cpu') / rate(base, 'cpu'):.2f} (CPU time); peak "
                    f"{'GPU ' if gpu else ''}memory {100 * r[memory] / max(base[memory], 1):.0f} %"
                )


def char_range(text: str) -> tuple[int, int]:
    """--clip-chars: "fewest,most", whole numbers with 1 ≤ fewest ≤ most."""
    try:
        lo, hi = (int(n) for n in text.split(","))
    except ValueError:
        lo = hi = 0
    if not 1 <= lo <= hi:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give fewest,most, e.g. 2,14 (1 ≤ fewest ≤ most)"
        )
    return lo, hi


def hours_list(text: str) -> list[float]:
    """--hours: comma-separated sizes in hours, above 0, smallest first (the ratio is the last
    over the first)."""
    try:
        hours = [float(h) for h in text.split(",")]
    except ValueError:
        hours = []
    if not hours or not all(0 < h < math.inf for h in hours) or hours != sorted(hours):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give hours above 0, smallest first, e.g. 1,5,20"
        )
    return hours


def variant_list(text: str) -> list[str]:
    """--variants: comma-separated names, each one of VARIANTS or OPTIONAL_VARIANTS."""
    variants = [v.strip() for v in text.split(",")]
    unknown = [v for v in variants if v not in VARIANTS + OPTIONAL_VARIANTS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown {', '.join(unknown)}; choose from {', '.join(VARIANTS + OPTIONAL_VARIANTS)}"
        )
    return variants


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, each checked here (a bad one stops the bench before any compute, naming
    it), and --device cuda refused where torch sees no CUDA device."""
    from bench_accuracy import positive_number, whole_number

    from engine.cli import positive_int

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--epochs", type=positive_number, default=3.0, help="audio seen, in passes over the data"
    )
    p.add_argument("--batch", type=positive_int, default=8, help="utterances per step (hf)")
    p.add_argument("--lr", type=positive_number, default=3e-4)
    p.add_argument(
        "--warmup", type=whole_number(0), default=3, help="learning-rate warmup steps, both sides"
    )
    p.add_argument(
        "--micro-seconds", type=positive_number, default=8.0, help="tingxie micro-batch audio"
    )
    p.add_argument("--size", choices=("tiny", "small", "full"), default="small")
    p.add_argument("--clips", type=positive_int, default=32)
    p.add_argument(
        "--clip-chars", type=char_range, default="2,14", help="characters a clip, fewest,most"
    )
    p.add_argument(
        "--char-seconds", type=positive_number, default=0.12, help="tone seconds a character"
    )
    p.add_argument(
        "--device", choices=("cpu", "cuda"), default="cpu", help="where every side trains"
    )
    p.add_argument("--skip-bf16", action="store_true", help="skip the bf16-autocast variant")
    p.add_argument(
        "--variants",
        type=variant_list,
        default=",".join(VARIANTS),
        help=f"comma-separated, of {', '.join(VARIANTS + OPTIONAL_VARIANTS)}",
    )
    p.add_argument(
        "--repeat", type=positive_int, default=1, help="interleaved rounds; fastest counts"
    )
    p.add_argument("--memory", action="store_true", help="peak memory at 1, 5 and 20 h instead")
    p.add_argument(
        "--hours", type=hours_list, default="1,5,20", help="--memory: corpus sizes, smallest first"
    )
    p.add_argument("--memory-steps", type=positive_int, default=3, help="--memory: steps per job")
    p.add_argument(
        "--profile-steps",
        type=whole_number(0),
        default=0,
        help="torch.profiler over this many steps of each variant after two, 0 = none "
        "(bench/profiling.py; the profiled steps are slower, so the ratios of such a run are not "
        "the bench's)",
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    p.add_argument("--manifest", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.skip_bf16:
        args.variants = [v for v in args.variants if v != "tingxie-bf16"]
        if not args.variants:
            p.error("--variants: nothing left to run once --skip-bf16 drops tingxie-bf16")
    if args.device == "cuda" and not args.child:
        import torch

        if not torch.cuda.is_available():
            p.error("--device cuda: torch finds no CUDA device here; run with --device cpu")
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        child(args)
        return
    if args.memory:
        memory_report(args)
        return
    model_dir, manifest, note = prepare(args)
    if note:
        print(note, flush=True)
    results: dict[str, dict] = {}
    for round_ in range(args.repeat):  # interleaved; the fastest run of each counts
        for variant in args.variants:
            print(f"round {round_ + 1}: {variant}…", flush=True)
            try:
                r = spawn(variant, model_dir, manifest, args)
            except SystemExit as failed:  # report the others
                print(failed, flush=True)
                continue
            if variant not in results or r["wall"] < results[variant]["wall"]:
                results[variant] = r
    print_report(results, args, note)
    for variant, r in results.items():
        if r.get("profile"):
            print(f"\n{variant}, {r['profile']}")


if __name__ == "__main__":
    main()
