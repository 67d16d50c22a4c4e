"""Training speed of Tingxie's tuning job against a plain Hugging Face `Trainer`, in one run.

    .venv/bin/python bench/bench_train.py                  # small model, 30 steps
    .venv/bin/python bench/bench_train.py --steps 10 --size tiny

Builds a random wav2vec2 checkpoint and a synthetic tone corpus of uneven lengths (cached in
bench/.cache/), then trains the same number of steps on the same data, each side in its own
subprocess (clean peak memory):

- hf: `Trainer` set up as transformers' `run_speech_recognition_ctc.py` does: features and
  labels prepared per example by the processor, its `DataCollatorCTCWithPadding`, the script's
  model overrides (mask_time_prob 0.05, layerdrop 0, feature encoder frozen) and
  `TrainingArguments` defaults otherwise (fp32 on CPU, random batches, AdamW, linear decay);
- tingxie: `run_job` with the same trainable weights (full, feature encoder frozen), learning
  rate, warmup and audio per step, automatic precision (fp32 on CPU, bf16 on recent GPUs),
  length-grouped micro-batches;
- tingxie-nocache: the same without caching the frozen encoder's features (what a job whose
  encoder trains gets: length grouping and the lean loop only);
- tingxie-bf16 (unless --skip-bf16): the same under bf16 autocast, which is why automatic
  precision stays fp32 for CPU training.

Each variant runs --repeat times, interleaved, and its fastest run counts (other processes on
a shared machine only ever slow a run down).

Prints utterances per second (wall and CPU time: CPU time is steadier when other processes
share the machine), the peak resident memory added by training, the loss trajectory of each
and the ratios against hf.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache"
sys.path.insert(0, str(ROOT))

CORPUS_CHARS = "的一是不了人我在有他这中"


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


def prepare(size: str, clips: int) -> tuple[Path, Path]:
    from engine.testmodels import build_model
    from engine.tune.testdata import tone_corpus

    folder = CACHE / f"train-{size}-{clips}"
    model_dir, manifest = folder / "model", folder / "data" / "manifest.tsv"
    if not (model_dir / "config.json").is_file():
        build_model(model_dir, size)
    if not manifest.is_file():
        tone_corpus(
            folder / "data", clips, chars=CORPUS_CHARS, min_chars=2, max_chars=14,
            char_seconds=0.12, seed=0,
        )  # fmt: skip
    return model_dir, manifest


# ---- the baseline: run_speech_recognition_ctc.py's setup ------------------------------


def _hf_collator(processor):
    import torch

    class DataCollatorCTCWithPadding:
        """As in run_speech_recognition_ctc.py: pad inputs and labels separately."""

        def __call__(self, features):
            inputs = [{"input_values": f["input_values"]} for f in features]
            labels = [{"input_ids": f["labels"]} for f in features]
            batch = processor.pad(input_features=inputs, padding=True, return_tensors="pt")
            label_batch = processor.pad(labels=labels, padding=True, return_tensors="pt")
            labels = label_batch["input_ids"].masked_fill(label_batch.attention_mask.ne(1), -100)
            batch["labels"] = labels
            if "attention_mask" in batch:
                batch["attention_mask"] = batch["attention_mask"].to(torch.long)
            return batch

    return DataCollatorCTCWithPadding()


def run_hf(model_dir: Path, manifest: Path, args) -> dict:
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
            "input_values": processor(load_example_audio(e), sampling_rate=16000).input_values[0],
            "labels": processor(text=e.text).input_ids,
        }
        for e in examples
    ]
    timer = {}

    class Timing(TrainerCallback):
        def on_train_begin(self, *a, **k):
            timer["wall"], timer["cpu"] = time.perf_counter(), time.process_time()

        def on_train_end(self, *a, **k):
            timer["wall"] = time.perf_counter() - timer["wall"]
            timer["cpu"] = time.process_time() - timer["cpu"]

    training_args = TrainingArguments(
        output_dir=str(CACHE / "hf-trainer-out"),
        per_device_train_batch_size=args.batch,
        max_steps=args.steps,
        learning_rate=args.lr,
        warmup_steps=args.warmup,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        data_collator=_hf_collator(processor),
        train_dataset=dataset,
        processing_class=processor,
        callbacks=[Timing()],
    )
    torch.manual_seed(0)
    rss = PeakRss()
    rss.start()
    trainer.train()
    peak = rss.stop()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    lengths = [len(d["input_values"]) for d in dataset]
    batches = list(trainer.get_train_dataloader().batch_sampler)[: args.steps]
    return dict(
        samples=args.steps * args.batch, wall=timer["wall"], cpu=timer["cpu"], peak=peak,
        losses=losses, padding=padding_fraction(batches, lengths),
    )  # fmt: skip


# ---- Tingxie ------------------------------------------------------------------------------


def run_tingxie(model_dir: Path, manifest: Path, args, precision: str, cache: bool) -> dict:
    import shutil

    from engine.audio import probe
    from engine.tune.config import TuneConfig
    from engine.tune.data import from_manifest
    from engine.tune.events import JobFailed, JobStarted, StepProgress
    from engine.tune.loop import run_job

    out = CACHE / f"tingxie-out-{precision}-{cache}"
    shutil.rmtree(out, ignore_errors=True)
    examples = from_manifest(manifest).examples
    seconds = sum(probe(e.audio).duration for e in examples) / len(examples)  # mean duration
    config = TuneConfig(
        model=str(model_dir),
        data=str(manifest),
        output_dir=str(out),
        method="full",
        freeze_feature_encoder=True,
        steps=args.steps,
        learning_rate=args.lr,
        warmup_steps=args.warmup,
        batch_seconds=args.batch * seconds,
        micro_batch_seconds=args.micro_seconds,
        mask_time_prob=0.05,
        heldout_fraction=0.0,
        eval_every=0,
        save_every=0,
        precision=precision,
        cache_features=cache,
        device="cpu",
    )
    rss = PeakRss()
    samples, losses, started = 0, [], None
    for event in run_job(config):
        if isinstance(event, JobStarted):
            rss.start()
            started = (time.perf_counter(), time.process_time())
            padding = event.padding_fraction
        elif isinstance(event, StepProgress):
            samples += event.examples
            losses.append(event.loss)
            if event.step == args.steps:
                wall = time.perf_counter() - started[0]
                cpu = time.process_time() - started[1]
                peak = rss.stop()
        elif isinstance(event, JobFailed):
            raise SystemExit(event.message)
    return dict(samples=samples, wall=wall, cpu=cpu, peak=peak, losses=losses, padding=padding)


# ---- driver ---------------------------------------------------------------------------


def child(args) -> None:
    model_dir, manifest = Path(args.model_dir), Path(args.manifest)
    if args.child == "hf":
        result = run_hf(model_dir, manifest, args)
    else:
        precision = "bf16" if args.child.endswith("bf16") else "auto"
        result = run_tingxie(model_dir, manifest, args, precision, "nocache" not in args.child)
    print("RESULT " + json.dumps(result))


def spawn(variant: str, model_dir: Path, manifest: Path, args) -> dict:
    command = [
        sys.executable, __file__, "--child", variant, "--model-dir", str(model_dir),
        "--manifest", str(manifest), "--steps", str(args.steps), "--batch", str(args.batch),
        "--lr", str(args.lr), "--warmup", str(args.warmup),
        "--micro-seconds", str(args.micro_seconds),
    ]  # fmt: skip
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"{variant} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def report(results: dict[str, dict], args) -> None:
    import numpy as np

    print(f"\n{args.steps} steps, {args.batch} utterances per step (hf) / same audio per step")
    print(f"{'':14}{'utt/s wall':>11}{'utt/s CPU':>11}{'peak MB':>9}  loss: first  mid  last-5")
    base = results["hf"]
    for name, r in results.items():
        losses = r["losses"]
        print(
            f"{name:14}{r['samples'] / r['wall']:11.2f}{r['samples'] / r['cpu']:11.2f}"
            f"{r['peak'] / 2**20:9.0f}  {losses[0]:11.2f} {losses[len(losses) // 2]:5.2f} "
            f"{np.mean(losses[-5:]):6.2f}"
        )
    for name, r in results.items():
        if name == "hf":
            continue
        wall = (r["samples"] / r["wall"]) / (base["samples"] / base["wall"])
        cpu = (r["samples"] / r["cpu"]) / (base["samples"] / base["cpu"])
        memory = r["peak"] / max(base["peak"], 1)
        final = np.mean(r["losses"][-5:]) / np.mean(base["losses"][-5:])
        print(
            f"{name} / hf: samples/s ×{wall:.2f} (wall), ×{cpu:.2f} (CPU time); peak memory "
            f"{100 * memory:.0f} %; final loss ratio {final:.2f}; padding "
            f"{100 * r['padding']:.1f} % (hf {100 * base['padding']:.1f} %)"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=8, help="utterances per step (hf)")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--micro-seconds", type=float, default=8.0, help="tingxie micro-batch audio")
    p.add_argument("--size", choices=("tiny", "small"), default="small")
    p.add_argument("--clips", type=int, default=96)
    p.add_argument("--skip-bf16", action="store_true", help="skip the bf16-autocast variant")
    p.add_argument("--repeat", type=int, default=2, help="interleaved rounds; fastest counts")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    p.add_argument("--manifest", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    model_dir, manifest = prepare(args.size, args.clips)
    variants = ["hf", "tingxie", "tingxie-nocache"]
    variants += [] if args.skip_bf16 else ["tingxie-bf16"]
    results: dict[str, dict] = {}
    for round_ in range(args.repeat):  # interleaved; the fastest run of each counts
        for variant in variants:
            print(f"round {round_ + 1}: {variant}…", flush=True)
            r = spawn(variant, model_dir, manifest, args)
            if variant not in results or r["wall"] < results[variant]["wall"]:
                results[variant] = r
    report(results, args)


if __name__ == "__main__":
    main()
