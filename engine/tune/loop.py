"""The training loop behind `engine.train.run_job`: data preparation, steps, evaluation,
checkpoints, resume and export. Kept apart from the config and event types so those import
without torch-heavy dependencies."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import shutil
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from engine.atomic import atomic_write_text
from engine.audio import SAMPLE_RATE
from engine.chunking import FrameGeometry
from engine.decode import CtcVocab, greedy_text
from engine.lm import text_sentences
from engine.metrics import cer
from engine.model import LoadOptions
from engine.normalize import describe

from .batching import (
    Cursor,
    Step,
    equal_length_batches,
    padding_fraction,
    plan_epoch,
    steps_from,
)
from .cache import (
    CheckpointError,
    DiskSpaceError,
    RowStore,
    checkpoint_unwritten,
    examples_key,
    fixed_mmap_threshold,
    free_bytes,
    open_rows,
    write_rows,
)
from .checkpoints import (
    no_readable_checkpoint,
    read_checkpoint_file,
    restore_newest,
    set_aside,
)
from .config import TuneConfig
from .data import (
    MIN_SPLIT_ROWS,
    Example,
    ValidationReport,
    checked_source,
    heldout_shares,
    load_dataset,
    load_example_audio,
)
from .events import (
    Cadence,
    CheckpointSaved,
    CheckpointSetAside,
    Evaluated,
    JobCancelled,
    JobEvent,
    JobFailed,
    JobFinished,
    JobResult,
    JobStarted,
    PhaseSeconds,
    StepProgress,
    seconds_left,
    steps_that_fit,
)
from .export import ModelCard, save_adapter, save_merged
from .features import (
    FromFeatures,
    collate_features,
    encode_features,
    encoder_channels_last,
    features_key,
)
from .jobs import (
    CHECKPOINT_STATE,
    JobError,
    check_resumable,
    checkpoint_dirs,
    claim_output_dir,
    data_setting,
    examples_digest,
    resumed_split,
)
from .methods import MethodOptions, count_parameters, setup_method, trainable_state
from .prepare import check_time_masks, validate_for_model

__all__ = ["MIN_SPLIT_ROWS", "DiskSpaceError", "Job", "JobError", "heldout_shares", "run_job"]

log = logging.getLogger("tingxie.train")

_now = time.perf_counter  # the job's clock (steps, time limit); tests replace it

_CHECKPOINTS = "checkpoints"
_CACHE = "cache"  # decoded audio and encoder features (engine.tune.cache), removed when done
_WEIGHTS = "trainable.safetensors"
_OPTIMIZER = "optimizer.pt"
# Adam keeps two moments per trained weight: a checkpoint holds about three copies of them.
_CHECKPOINT_COPIES = 3
# The settings a resumed run must share with the run that wrote its checkpoints: what the model,
# its data, its labels and the optimizer's path depend on (`Job._settings` adds the resolved
# freeze_layers, the training and held-out rows and the added characters). The others may change
# on resume: steps and max_minutes (warmup_steps with them), evaluations, checkpoints, hardware.
_RESUME_SETTINGS = (
    "model", "data", "method", "learning_rate", "lora_rank", "lora_alpha", "lora_dropout",
    "freeze_feature_encoder", "extend_vocab", "weight_decay", "max_grad_norm", "batch_seconds",
    "micro_batch_seconds", "mask_time_prob", "mask_time_length", "mask_feature_prob",
    "layerdrop", "seed", "heldout_fraction", "min_seconds", "max_seconds",
)  # fmt: skip


@dataclass(slots=True)
class _Data:
    """The examples and their labels (in memory: a few bytes per character); their audio is
    decoded to disk once and read a batch at a time (`_Audio`)."""

    train: list[Example]
    train_labels: list[np.ndarray]
    heldout: list[Example]
    report: ValidationReport
    added_chars: list[str]
    normalization: tuple[str, ...]
    # zero mean, unit variance per utterance, as the model's feature extractor does
    normalize_audio: bool
    # the tuned model's domain n-gram text (TuneConfig.domain_text, else the training rows')
    lm_text: list[str]

    @property
    def heldout_texts(self) -> list[str]:
        return [e.text for e in self.heldout]


@dataclass(frozen=True, slots=True)
class _Store:
    """One on-disk store a job reads: its folder's name under cache/, the key of what it is
    built from, the examples whose rows it holds, and its bytes per sample of their audio."""

    name: str
    key: str
    examples: list[Example]
    bytes_per_sample: float
    what: str


@dataclass(frozen=True, slots=True)
class _Audio:
    """The decoded audio on disk (see engine.tune.cache), read a batch at a time."""

    train: RowStore
    heldout: RowStore
    normalize: bool

    def read(self, store: RowStore, indices: Sequence[int]) -> list[np.ndarray]:
        return [_normalized(store[i], self.normalize) for i in indices]


@dataclass(slots=True)
class _State:
    """Resumable job state beyond weights and optimizer (saved as state.json)."""

    step: int = 0
    epoch: int = 0
    index: int = 0
    cer_before: float | None = None  # the report share's (`heldout_shares`) at step 0
    # The selection share's CER at best_step, the step it chose; None while none is chosen (the
    # held-out rows not split: the last step is kept).
    best_cer: float | None = None
    best_step: int = 0
    # each evaluation's {"step", "cer" (the report share's), "selection_cer" (None: not split)}
    history: list[dict] = field(default_factory=list)
    # Whether the held-out rows are split into a report and a selection share (`heldout_shares`).
    # False in checkpoints of versions before the split, whose best step was chosen on the rows
    # it reported on: resumed, such a job chooses none (`_read_state`).
    split_heldout: bool = False
    # The job's wall seconds when this state was saved (set-up included, earlier runs too) and
    # when its warmup ended: a time limit (TuneConfig.max_minutes) resumes its count from them.
    seconds: float = 0.0
    warmup_seconds: float | None = None
    # What the job's checkpoints were trained with (`Job._settings`); None in checkpoints of
    # versions before it was kept, which resume unchecked.
    settings: dict | None = None
    # The seconds of its phases measured so far (PhaseSeconds' evaluation, refit, save, write),
    # which a resumed run may not measure again before its time limit needs them (it skips the
    # base's evaluation); empty in checkpoints of versions before they were kept: priors then.
    phases: dict = field(default_factory=dict)


def rng_state() -> dict:
    """The random generators' state as plain JSON (a pickle could run code when resumed)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state().tolist(),
        "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
        "python": [version, list(internal), gauss_next],
    }


def set_rng_state(state: dict) -> None:
    """Restore `rng_state()`; a malformed state raises ValueError (the file is named by the
    caller)."""
    try:
        torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        version, internal, gauss_next = state["python"]
        random.setstate((version, tuple(internal), gauss_next))
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"random state is malformed ({e})") from e


def _evaluated(step: int, refs: Sequence[str], hyps: Sequence[str], split: bool) -> Evaluated:
    """The evaluation of one decoding of every held-out row: the report share's CER and samples,
    and the selection share's CER (None when not split)."""
    report, selection = heldout_shares(len(refs), split)
    result = cer([refs[i] for i in report], [hyps[i] for i in report])
    chosen = cer([refs[i] for i in selection], [hyps[i] for i in selection]) if selection else None
    samples = tuple((refs[i], hyps[i]) for i in report[:3])
    return Evaluated(step, result.cer, result, samples, chosen.cer if chosen else None)


def _read_state(path: Path) -> _State:
    """A checkpoint's state.json. One from before the held-out split (no split_heldout) chose its
    best step on the rows it reported on: it is read as not split, with no step chosen, so the
    resumed job keeps its last step and reports on every held-out row, as its step 0 did."""
    record = json.loads(path.read_text(encoding="utf-8"))
    if "split_heldout" not in record:
        record |= {"best_cer": None, "best_step": 0}
    return _State(**record)


def _cer_at(history: Sequence[dict], step: int) -> float | None:
    """The reported CER of `step`'s evaluation; None when it was not evaluated."""
    return next((h["cer"] for h in history if h["step"] == step), None)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Job:
    """One run of a resolved TuneConfig; `run()` yields the events."""

    def __init__(self, config: TuneConfig, cancel: threading.Event, resume: bool) -> None:
        self.cfg = config
        self.cancel = cancel
        self.resume = resume
        self.out = Path(config.output_dir)
        self.ckpt_root = self.out / _CHECKPOINTS
        self.state = _State()
        self._began = _now()
        self._prior = 0.0  # seconds of earlier runs of this job (from a resumed checkpoint)
        # the newer checkpoints a resume could not read, and so set aside (`_resume`)
        self._set_aside: list[CheckpointSetAside] = []
        self.clock = 0.0  # the job's seconds at the last step, as every process agrees
        self._claim = None  # the output_dir's lock file (`claim_output_dir`), held while it runs
        # the last evaluation's and checkpoint's seconds and the refit's, for the time left
        # (`seconds_left`) and what a time limit leaves for steps (`steps_that_fit`)
        self.phases = PhaseSeconds(step=0.0)
        self._load_seconds = 0.0  # loading the base model: the refit loads the tuned one
        self._load_bytes = 0  # the base model's weights, as loaded

    # ---- setup -------------------------------------------------------------------------

    def _setup_runtime(self) -> None:
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        from engine.model import pick_device, pick_dtype

        cpu = self.cfg.device == "cpu" or (
            self.cfg.device == "auto" and not torch.cuda.is_available()
        )
        # A layer that layerdrop skips gives its weights no gradient in that step, which DDP
        # must be told to look for (a pass over the graph every step, so only then).
        unused = DistributedDataParallelKwargs(find_unused_parameters=self.cfg.layerdrop > 0)
        self.acc = Accelerator(cpu=cpu, mixed_precision="no", kwargs_handlers=[unused])
        self.device = torch.device("cpu") if cpu else self.acc.device
        if self.cfg.precision == "auto" and cpu:
            # Measured (bench/bench_train.py, small model, features cached, 2-core Xeon with
            # AMX, shared): bf16 autocast ran training steps at 0.55x to 1.1x fp32's speed
            # across four runs, the whole job at 0.72x to 1.06x by CPU time; an idle 2-core
            # EPYC (Zen 4) once gave 1.3x. No reliable gain, so auto stays fp32 on CPUs;
            # `precision: bf16` tries it.
            dtype = torch.float32
        else:
            dtype = pick_dtype(self.cfg.precision, pick_device("cpu" if cpu else "cuda"))
        self.autocast_dtype = None if dtype == torch.float32 else dtype
        self.precision = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
        self.precision = self.precision[dtype]

    def _load_base(self):
        from safetensors import SafetensorError
        from transformers import AutoModelForCTC, AutoProcessor

        from engine.model import (
            ModelLoadError,
            adapter_language,
            check_json,
            pick_attention,
            resolve_model,
        )
        from engine.registry import UnsupportedModelError, family_for

        try:
            path = resolve_model(self.cfg.model, allow_pickle=self.cfg.allow_pickle)
        except ModelLoadError as e:  # worded for a job: its setting, not a CLI option
            if e.code == "model.hub_pickle_only":  # a Hub id's: the same way out
                raise JobError("tune.pickle_only", path=e.params["source"]) from e
            if e.code != "model.pickle_only":
                raise
            raise JobError("tune.pickle_only", **e.params) from e
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        try:
            family = family_for(config.get("model_type", "?"))
        except UnsupportedModelError as e:
            raise ModelLoadError("model.unsupported_in_folder", path=path, error=e) from e
        attention = pick_attention("auto", family, self.device, torch.float32)
        # the JSON files checked as loading checks them; a per-language vocab.json (MMS) read in
        # the language loading reads, whose adapter file (where there is one) gives the head
        language, adapter = check_json(path), adapter_language(path)
        processor = AutoProcessor.from_pretrained(
            path, trust_remote_code=False, **({"target_lang": language} if language else {})
        )
        try:
            model = AutoModelForCTC.from_pretrained(
                path,
                trust_remote_code=False,
                use_safetensors=any(path.glob("*.safetensors")) or None,
                dtype=torch.float32,
                attn_implementation=attention,
                mask_time_prob=self.cfg.mask_time_prob,
                mask_time_length=self.cfg.mask_time_length,
                mask_feature_prob=self.cfg.mask_feature_prob,
                layerdrop=self.cfg.layerdrop,
                ctc_loss_reduction="mean",
                ctc_zero_infinity=True,
                **({"target_lang": adapter} if adapter else {}),
            )
        except SafetensorError as e:  # a copy or download cut short: named, with what to do
            weights = path / "model.safetensors"
            raise ModelLoadError("model.bad_weights", path=weights, detail=e) from e
        self.family = family
        return model, processor

    def _prepare_data(self, model, processor) -> _Data:
        from .vocab import extend_vocabulary

        cfg = self.cfg
        tokenizer = processor.tokenizer
        specials = set(tokenizer.all_special_tokens)
        vocab = [t for t in tokenizer.get_vocab() if t not in specials]
        frame_seconds = float(np.prod(model.config.conv_stride)) / SAMPLE_RATE
        prepared = validate_for_model(
            load_dataset(cfg.data), vocab, cfg, frame_seconds, split_by=resumed_split
        )
        report, train, heldout = prepared.report, prepared.train, prepared.heldout
        geometry = FrameGeometry.from_convs(model.config.conv_kernel, model.config.conv_stride)
        check_time_masks(cfg, prepared, geometry)
        added: list[str] = []
        if cfg.extend_vocab:
            chars = "".join(e.text for e in report.kept)
            added, processor = extend_vocabulary(
                model, processor, chars, head=self.family.head, seed=cfg.seed
            )
        self.processor = processor
        ids = processor.tokenizer.get_vocab()
        unk = processor.tokenizer.unk_token_id
        space = ids.get(getattr(processor.tokenizer, "word_delimiter_token", "|"), unk)
        # read now, so that a bad file stops the job before its steps, not after them
        lm_text = (
            text_sentences([cfg.domain_text], vocab) if cfg.domain_text else [e.text for e in train]
        )
        return _Data(
            train=train,
            train_labels=[
                np.array([space if c == " " else ids.get(c, unk) for c in e.text], dtype=np.int64)
                for e in train
            ],
            heldout=heldout,
            report=report,
            added_chars=added,
            normalization=tuple(describe(prepared.normalize)),
            normalize_audio=bool(getattr(processor.feature_extractor, "do_normalize", True)),
            lm_text=lm_text,  # never the held-out rows
        )

    def _plan_cache(self, model) -> list[_Store]:
        """The on-disk stores the job reads (engine.tune.cache): training and held-out audio,
        and the encoder features when the frozen encoder's output is cached."""
        data, config = self.data, model.config
        plans = [
            _Store("train", examples_key(data.train), data.train, 2, "the decoded training audio"),
            _Store(
                "heldout", examples_key(data.heldout), data.heldout, 2, "the decoded held-out audio"
            ),
        ]
        if self.cfg.freeze_feature_encoder and self.cfg.cache_features:
            inputs = f"{plans[0].key} {data.normalize_audio} {self.device.type}"
            # float32 × channels per frame, a frame per prod(conv_stride) samples
            per_sample = 4 * config.conv_dim[-1] / float(np.prod(config.conv_stride))
            key = features_key(model, self.family, inputs)
            plans.append(_Store("features", key, data.train, per_sample, "the encoder features"))
        return plans

    def _check_disk(self, model, plans: Sequence[_Store]) -> None:
        """Room for the stores not yet on disk, the checkpoints and the tuned model."""
        trainable, total = count_parameters(model)
        seconds = self.data.report.durations
        cache = self.out / _CACHE
        caching = sum(
            p.bytes_per_sample * SAMPLE_RATE * sum(seconds.get(e.id, 0.0) for e in p.examples)
            for p in plans
            if open_rows(cache / p.name, p.key) is None
        )
        need = 4 * (2 * total + (self.cfg.keep_checkpoints + 1) * _CHECKPOINT_COPIES * trainable)
        need += int(caching)
        where, free = free_bytes(self.out)
        if free < need:
            raise DiskSpaceError(
                f"{self.out}: the job needs about {need / 1e9:.2f} GB free for checkpoints, the "
                f"tuned model and its decoded audio ({caching / 1e9:.2f} GB) but {where} has "
                f"{free / 1e9:.2f} GB; free space or choose another output_dir"
            )

    def _store(self, plan: _Store, rows: Iterator[np.ndarray]) -> RowStore:
        """The store on disk when whole and current, else written from `rows` (a generator:
        nothing is decoded when the store is reused)."""
        folder = self.out / _CACHE / plan.name
        found = open_rows(folder, plan.key)
        if found is not None:
            return found
        log.info("writing %s (%d utterances) to %s", plan.what, len(plan.examples), folder)
        quantized = plan.name != "features"
        return write_rows(folder, plan.key, rows, quantized=quantized, what=plan.what)

    def _cache(self, model, plans: Sequence[_Store]) -> None:
        """Decode the audio (and encode the features) to disk once; the main process writes,
        the others then open what it wrote."""
        with self.acc.main_process_first():
            train, heldout = (
                self._store(p, map(load_example_audio, p.examples)) for p in plans[:2]
            )
            self.audio = _Audio(train, heldout, self.data.normalize_audio)
            self.features = None
            if len(plans) > 2:
                audio = (self.audio.read(train, [i])[0] for i in range(len(train)))
                encoded = encode_features(model, self.family, audio, self.device)
                self.features = self._store(plans[2], encoded)

    def _build_optimizer(self, model) -> None:
        cfg = self.cfg
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        warmup, total = cfg.warmup_steps, cfg.steps

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            by_steps = (total - step) / max(1, total - warmup)
            return max(0.0, min(by_steps, self._time_left()))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        # fp16 needs loss scaling against underflowing gradients; a no-op otherwise
        fp16 = self.autocast_dtype == torch.float16
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=fp16)

    def _time_left(self) -> float:
        """The share of the time limit's decay still ahead: 1 without a limit or during warmup,
        falling linearly from the job's time when warmup ended to 0 at the last step's end: the
        limit less what follows that step (`seconds_left`, as timed so far)."""
        limit = self.cfg.max_minutes
        start = self.state.warmup_seconds
        if limit is None or start is None:
            return 1.0
        end = limit * 60 - seconds_left(self.state.step, 0, self.phases, self._cadence())
        span = end - start
        return max(0.0, (end - self.clock) / span) if span > 0 else 0.0

    def _anyone(self, flag: bool) -> bool:
        """Whether `flag` holds on any process, told to every process: a cancel heard by one
        (a signal, a cancel file polled apart) stops all at the same step, where all save."""
        if self.acc.num_processes == 1:
            return flag
        return self.acc.reduce(torch.tensor(float(flag), device=self.device), "sum").item() > 0

    def _gathered(self, value) -> list:
        """Every process's `value` (any picklable object), in process order, on every process."""
        if self.acc.num_processes == 1:
            return [value]
        from accelerate.utils import gather_object

        return gather_object([value])

    def _agreed(self, *values: float) -> list[float]:
        """The main process's values, on every process, so that all take the same learning
        rate and stop at the same step however their clocks drift."""
        if self.acc.num_processes == 1:
            return list(values)
        from accelerate.utils import broadcast

        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        return broadcast(t, from_process=0).tolist()

    def _steps_that_fit(self, step_time: float) -> int:
        """Steps still to run: the configured ones, or fewer under a time limit: as many steps
        of `step_time` as end, with their evaluations and checkpoints and the finish (as timed
        so far), before it."""
        left = self.cfg.steps - self.state.step
        if self.cfg.max_minutes is None:
            return left
        budget = self.cfg.max_minutes * 60 - self.clock
        phases = replace(self.phases, step=step_time)
        return steps_that_fit(self.state.step, left, phases, self._cadence(), budget)

    def _cadence(self) -> Cadence:
        """When this job evaluates and saves: held-out rows that are split choose best steps,
        each saved as it is found."""
        evaluates = bool(self.data.heldout)
        return Cadence(
            self.cfg.save_every,
            self.cfg.eval_every if evaluates else None,
            best_saves=self.state.split_heldout,
        )

    def _inner(self) -> torch.nn.Module:
        """The model being tuned (a PeftModel for LoRA), without DDP or the features wrapper."""
        model = self.acc.unwrap_model(self.model)
        return model.model if isinstance(model, FromFeatures) else model

    # ---- batches -----------------------------------------------------------------------

    def _collate(self, audio: Sequence[np.ndarray], labels: Sequence[np.ndarray] | None) -> dict:
        longest = max(len(a) for a in audio)
        values = np.zeros((len(audio), longest), dtype=np.float32)
        mask = np.zeros((len(audio), longest), dtype=np.int64)
        for row, a in enumerate(audio):
            values[row, : len(a)] = a
            mask[row, : len(a)] = 1
        batch = {"input_values": torch.from_numpy(values).to(self.device)}
        if getattr(self.processor.feature_extractor, "return_attention_mask", True):
            batch["attention_mask"] = torch.from_numpy(mask).to(self.device)
        if labels is not None:
            width = max(len(t) for t in labels)
            padded = np.full((len(labels), width), -100, dtype=np.int64)
            for row, t in enumerate(labels):
                padded[row, : len(t)] = t
            batch["labels"] = torch.from_numpy(padded).to(self.device)
        return batch

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _train_step(self, step: Step) -> float:
        """One optimizer step over this process's share of the step's micro-batches."""
        acc, model = self.acc, self.model
        world, rank = acc.num_processes, acc.process_index
        share = step.micro_batches[rank::world]
        local = 0.0
        for k, batch in enumerate(share):
            labels = [self.data.train_labels[i] for i in batch]
            sync = k == len(share) - 1
            weight = len(batch) / step.examples
            with contextlib.nullcontext() if sync else acc.no_sync(model):
                with self._autocast():
                    if self.features is None:
                        inputs = self._collate(self.audio.read(self.audio.train, batch), labels)
                        loss = model(**inputs).loss
                    else:
                        features = [self.features[i] for i in batch]
                        loss = model(**collate_features(features, labels, self.device))
                acc.backward(self.scaler.scale(loss * weight * world))
            local += loss.item() * weight
        self.scaler.unscale_(self.optimizer)
        if self.cfg.max_grad_norm > 0:
            acc.clip_grad_norm_(
                [p for p in model.parameters() if p.requires_grad], self.cfg.max_grad_norm
            )
        self.scaler.step(self.optimizer)  # skips the step when fp16 gradients overflowed
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return float(acc.reduce(torch.tensor(local, device=self.device), "sum").item())

    # ---- evaluation --------------------------------------------------------------------

    def _evaluate(self) -> Evaluated:
        """The held-out evaluation, measured by the main process and shared: the best
        checkpoint is then the same on every process (machines whose arithmetic differs could
        decode a row apart, and one process would save a checkpoint the others never reach)."""
        started = _now()
        event = self._gathered(self._measure() if self.acc.is_main_process else None)[0]
        seconds = _now() - started
        # the refit's prior until it runs: it loads the saved model and passes the rows again
        self.phases = replace(self.phases, evaluation=seconds, refit=self._load_seconds + seconds)
        return event

    def _measure(self) -> Evaluated:
        refs = self.data.heldout_texts
        return _evaluated(self.state.step, refs, self._hypotheses(), self.state.split_heldout)

    @torch.no_grad()
    def _hypotheses(self) -> list[str]:
        """Every held-out row as the model being tuned writes it now (greedy CTC), each once."""
        model = self._inner()
        model.eval()
        heldout, refs = self.audio.heldout, self.data.heldout_texts
        lengths = heldout.lengths
        config = model.config
        # the decoding and frame arithmetic of transcription (engine.decode, engine.chunking)
        ctc = CtcVocab.from_tokenizer(self.processor.tokenizer, config.pad_token_id)
        geometry = FrameGeometry.from_convs(config.conv_kernel, config.conv_stride)
        limit = int(self.cfg.micro_batch_seconds * SAMPLE_RATE)
        hyps = [""] * len(refs)
        # measured as transcription runs the model: padded batches only where padding changes
        # no output (engine.transcribe.Transcriber.pads_batches)
        if self.family.pads_exactly_with(config):
            batches = plan_epoch(lengths, limit, self.cfg.seed, 0)
        else:
            batches = equal_length_batches(lengths, limit)
        for batch in batches:
            inputs = self._collate(self.audio.read(heldout, batch), None)
            with self._autocast():
                logits = model(**inputs).logits
            log_probs = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
            for row, i in enumerate(batch):
                hyps[i] = greedy_text(log_probs[row, : geometry.frames(lengths[i])], ctc)
        model.train()
        return hyps

    def _record_eval(self, event: Evaluated) -> bool:
        """Update best / history; True when this trained model is the best so far by the
        selection share's CER (ties go to the later step: same CER after more training). Never
        True when the held-out rows are not split: the report share chooses nothing."""
        s, chosen = self.state, event.selection_cer
        s.history.append({"step": event.step, "cer": event.cer, "selection_cer": chosen})
        if event.step > 0 and chosen is not None and (s.best_cer is None or chosen <= s.best_cer):
            s.best_cer, s.best_step = chosen, event.step
            return True
        return False

    # ---- checkpoints -------------------------------------------------------------------

    def _checkpoint_dirs(self) -> list[Path]:
        return checkpoint_dirs(self.ckpt_root)

    def _save_checkpoint(self, best: bool) -> CheckpointSaved:
        acc, step, started = self.acc, self.state.step, _now()
        final = self.ckpt_root / f"step-{step:07d}"
        tmp = self.ckpt_root / f".tmp-step-{step:07d}"
        # every process's random state, written by the main process as all the rest: the
        # others may not see its output_dir (machines without a shared filesystem)
        states = self._gathered(rng_state())
        try:
            if acc.is_main_process:
                from safetensors.torch import save_file

                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
                for rank, state in enumerate(states):
                    atomic_write_text(tmp / f"rng-{rank}.json", json.dumps(state))
                self.state.seconds = self._prior + _now() - self._began
                save_file(trainable_state(self._inner()), tmp / _WEIGHTS)
                torch.save(
                    {
                        "optimizer": self.optimizer.state_dict(),
                        "scheduler": self.scheduler.state_dict(),
                        "scaler": self.scaler.state_dict(),
                    },
                    tmp / _OPTIMIZER,
                )
                # on the disk before the state that marks them complete (a power cut after it
                # would otherwise leave a complete checkpoint of emptied files)
                _sync(tmp / _WEIGHTS, tmp / _OPTIMIZER)
                self._saved(tmp, _now() - started)  # so far: kept for a resumed run
                self.state.phases = _kept_phases(self.phases)
                atomic_write_text(tmp / CHECKPOINT_STATE, json.dumps(asdict(self.state), indent=1))
                _sync(tmp)
        except OSError as e:  # a full disk: drop the partial copy, keep the last whole one
            shutil.rmtree(tmp, ignore_errors=True)
            raise self._disk_full(f"the checkpoint of step {step}", e) from e
        acc.wait_for_everyone()
        if acc.is_main_process:
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            _sync(self.ckpt_root)  # the new one is there before _rotate removes older ones
            self._rotate()
            self._saved(final, _now() - started)
        acc.wait_for_everyone()  # the others take the main process's phases at the next step
        return CheckpointSaved(step, final, best)

    def _saved(self, folder: Path, seconds: float) -> None:
        """Time a checkpoint's write (`seconds`, of `folder`), and from it the tuned model's:
        its bytes are the model's whole weights (and a LoRA job's adapter), a checkpoint's
        only the trained ones and their optimizer state, so their ratio scales it. The base's
        load, scaled alike, stays the floor: a small checkpoint's fixed costs mislead."""
        written = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        by_checkpoint = _scaled(seconds, self._write_bytes(), written)
        write = max(self._write_prior(), by_checkpoint)
        self.phases = replace(self.phases, save=seconds, write=write)

    def _write_bytes(self) -> int:
        """The bytes the finish writes: every weight of the model (a LoRA job's merged model
        and its adapter)."""
        return _tensor_bytes(self._inner())

    def _write_prior(self) -> float:
        """The finish's write before a checkpoint is timed: the base's load, scaled by the
        bytes to write over those loaded (the same model, once merged)."""
        return _scaled(self._load_seconds, self._write_bytes(), self._load_bytes)

    def _disk_full(self, what: str, error: OSError) -> CheckpointError:
        """What a failed checkpoint write (a full disk, a folder turned read-only) cost, and how
        to go on."""
        done = self._checkpoint_dirs()
        return checkpoint_unwritten(self.out, what, error, done[-1] if done else None)

    def _rotate(self) -> None:
        """Keep the last `keep_checkpoints` checkpoints and the best one."""
        dirs = self._checkpoint_dirs()
        best = self.ckpt_root / f"step-{self.state.best_step:07d}"
        for old in dirs[: -self.cfg.keep_checkpoints]:
            if old != best:
                shutil.rmtree(old, ignore_errors=True)

    def _load_weights(self, folder: Path) -> None:
        from safetensors.torch import load_file

        weights = read_checkpoint_file(folder / _WEIGHTS, load_file)
        model = self._inner()
        missing = sorted(set(weights) - {n for n, _ in model.named_parameters()})
        if missing:
            detail = f"{len(missing)} weight(s) this model lacks, e.g. {missing[0]}"
            raise JobError("tune.checkpoint_mismatch", path=folder, detail=detail)
        try:
            model.load_state_dict(weights, strict=False)
        except RuntimeError as e:  # "Error(s) in loading state_dict …", then the shapes
            raise JobError("tune.checkpoint_mismatch", path=folder, detail=_gist(e)) from e

    def _restore(self, folder: Path) -> None:
        """Resume from a checkpoint folder. Nothing in it can run code: weights are
        safetensors, the optimizer is read with `weights_only=True` (tensors and plain values
        only), state and random generators are JSON. A file that cannot be read raises
        `UnreadableCheckpoint`, one that does not fit this job's model
        tune.checkpoint_mismatch."""
        self._load_weights(folder)
        path = folder / _OPTIMIZER
        optimizer, scheduler, scaler = read_checkpoint_file(path, _optimizer_state)
        try:
            self.optimizer.load_state_dict(optimizer)
            self.scheduler.load_state_dict(scheduler)
            self.scaler.load_state_dict(scaler)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:  # other weights train
            raise JobError("tune.checkpoint_mismatch", path=path, detail=_gist(e)) from e
        self.state = read_checkpoint_file(folder / CHECKPOINT_STATE, _read_state)
        rng = folder / f"rng-{self.acc.process_index}.json"
        if rng.is_file():
            read_checkpoint_file(
                rng, lambda p: set_rng_state(json.loads(p.read_text(encoding="utf-8")))
            )
        log.info("resumed from %s (step %d)", folder, self.state.step)

    def _resume(self, settings: dict) -> None:
        """Resume from the last checkpoint, or, where a file of it cannot be read (cut short by
        a power cut, emptied, gone: `UnreadableCheckpoint`), from the newest earlier one that
        can be (`engine.tune.checkpoints`). The unreadable ones are set aside, and `run` says
        so after `JobStarted`. None readable: tune.checkpoints_unreadable, naming the job folder
        and each file that failed."""

        def restore(folder: Path) -> None:
            check_resumable(folder, settings)
            self._restore(folder)

        resumed, _, unreadable = restore_newest(self._checkpoint_dirs(), restore)
        self._same_on_every_process(resumed)
        if resumed is None:
            raise no_readable_checkpoint(self.out, unreadable)
        if self.acc.is_main_process:  # the main process moves them and says so, once
            self._set_aside = set_aside(unreadable, resumed, self.state.step)

    # ---- the run -----------------------------------------------------------------------

    def _setup(self) -> None:
        cfg = self.cfg
        fixed_mmap_threshold()
        self._setup_runtime()
        # before the folder is claimed (made, when new): a mistyped output_dir stays unmade
        resumed = self._resumed_from() if self.resume else None
        if self.resume and resumed is None:
            raise JobError("tune.nothing_to_resume", path=self.out, checkpoints=self.ckpt_root)
        checked_source(cfg.data)  # a mistyped data path, too, is told before the model loads
        existed = self.out.exists()
        fresh = not self.resume and not (self.out.is_dir() and any(self.out.iterdir()))
        with self.acc.main_process_first():  # the others then find the folder claimed
            self._claim = claim_output_dir(self.out, self.resume, lock=self.acc.is_main_process)
        made = set(os.listdir(self.out)) if fresh else set()  # the claim's mark and lock
        try:
            self._setup_claimed(resumed)
        except BaseException:
            if fresh and self.acc.is_main_process:
                self._unclaim(made, existed)
            raise

    def _unclaim(self, made: set[str], existed: bool) -> None:
        """A job that failed before it started (its model or data unusable), in a folder it
        found new or empty, leaves the folder as it found it: the next job there would otherwise
        find a job's mark and lock in it. Where it wrote more than those, all is kept. The files
        go while the lock is held (a job starting there meanwhile is refused, not given a lock
        file then deleted under it); one that cannot go while open (Windows) goes after."""
        claim, self._claim = self._claim, None
        try:
            if set(os.listdir(self.out)) != made:
                return
            held = []
            for name in made:
                try:
                    (self.out / name).unlink()
                except OSError:
                    held.append(name)
            if claim is not None:
                claim.close()
                claim = None
            for name in held:
                (self.out / name).unlink()
            if not existed:
                self.out.rmdir()
        except OSError as e:  # the error that stopped the job is the one to tell
            log.warning("%s: could not remove the job's marks (%s)", self.out, e)
        finally:
            if claim is not None:
                claim.close()

    def _setup_claimed(self, resumed: Path | None) -> None:
        """The rest of `_setup`, once the output_dir is claimed: the model loaded, the data
        read and checked against it, the method, the cache and the optimizer set up."""
        cfg = self.cfg
        _seed_everything(cfg.seed)
        started = _now()
        model, processor = self._load_base()
        self._load_seconds = _now() - started
        self._load_bytes = _tensor_bytes(model)
        self.data = self._prepare_data(model, processor)
        # a resumed job takes its checkpoint's instead (`_read_state`)
        self.state.split_heldout = len(self.data.heldout) >= MIN_SPLIT_ROWS
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
        layers = len(self.family.encoder_layers(model))
        options = MethodOptions(
            method=cfg.method,
            freeze_feature_encoder=bool(cfg.freeze_feature_encoder),
            freeze_layers=layers // 2 if cfg.freeze_layers is None else cfg.freeze_layers,
            lora_rank=int(cfg.lora_rank),
            lora_alpha=float(cfg.lora_alpha),
            lora_dropout=cfg.lora_dropout,
        )
        settings = self._settings(options)
        if resumed is not None:
            check_resumable(resumed, settings)
        model = setup_method(model, self.family, options)
        model.train()
        # where the job trains, before the feature cache runs the encoder (prepare() below
        # would move it too, but only after the cache)
        model.to(self.device)
        plans = self._plan_cache(model)
        self._check_disk(model, plans)
        self._build_optimizer(model)
        self._cache(model, plans)
        self.train_lengths = self.audio.train.lengths
        if self.device.type == "cpu" and not cfg.gradient_checkpointing:
            encoder_channels_last(model, self.family)  # steps without cached features, evaluations
        if self.features is not None:
            model = FromFeatures(model, self.family)
        self.model, self.optimizer = self.acc.prepare(model, self.optimizer)
        _seed_everything(cfg.seed + 1 + self.acc.process_index)
        # priors until measured: the refit loads the tuned model (and passes the held-out rows)
        refit = self._load_seconds if self.data.heldout else 0.0
        self.phases = replace(self.phases, refit=refit, write=self._write_prior())
        if resumed is not None:
            self._resume(settings)
            self._prior = self.state.seconds
            self.phases = replace(self.phases, **_kept_phases(self.state.phases))
        self.state.settings = settings

    def _resumed_from(self) -> Path | None:
        """The checkpoint a resumed run continues from: the last in output_dir (None: there is
        none, and the run is refused), the same on every process. Processes that see different
        ones (machines whose output_dir is no shared folder) would train from different steps:
        all stop, saying so."""
        existing = self._checkpoint_dirs()
        last = existing[-1] if existing else None
        self._same_on_every_process(last)
        return last

    def _same_on_every_process(self, checkpoint: Path | None) -> None:
        """tune.resume_not_shared unless every process found `checkpoint` to resume from."""
        seen = self._gathered(checkpoint.name if checkpoint else None)
        for rank, name in enumerate(seen):
            if name != seen[0]:
                nothing = "no checkpoint"
                found, main = name or nothing, seen[0] or nothing
                raise JobError(
                    "tune.resume_not_shared", path=self.out, rank=rank, found=found, main=main
                )

    def _settings(self, options: MethodOptions) -> dict:
        """What this run trains with, as its checkpoints keep it (`check_resumable`)."""
        cfg, data = self.cfg, self.data
        settings = {name: getattr(cfg, name) for name in _RESUME_SETTINGS}
        settings["data"] = data_setting(cfg)  # a moved job's own data.tsv
        settings["normalize"] = asdict(cfg.normalize)
        settings["freeze_layers"] = options.freeze_layers if cfg.method == "partial" else None
        settings["train_examples"] = examples_digest(data.train)
        settings["heldout_examples"] = examples_digest(data.heldout)
        settings["added_chars"] = "".join(data.added_chars)
        return settings

    def _started(self) -> JobStarted:
        data, limit = self.data, int(self.cfg.micro_batch_seconds * SAMPLE_RATE)
        lengths = self.train_lengths
        trainable, total = count_parameters(self._inner())
        return JobStarted(
            config=self.cfg,
            train_examples=len(lengths),
            heldout_examples=len(data.heldout),
            train_seconds=sum(lengths) / SAMPLE_RATE,
            validation=data.report.table(),
            skipped_rows=data.report.left_out,
            normalization=data.normalization,
            added_chars="".join(data.added_chars),
            padding_fraction=padding_fraction(
                plan_epoch(lengths, limit, self.cfg.seed, 0), lengths
            ),
            trainable_parameters=trainable,
            total_parameters=total,
            device=str(self.device),
            precision=self.precision,
            processes=self.acc.num_processes,
            resumed_from_step=self.state.step,
            selection_examples=len(heldout_shares(len(data.heldout), self.state.split_heldout)[1]),
        )

    def run(self) -> Iterator[JobEvent]:
        """The job's events: it ends with JobFinished, or JobCancelled when a cancel came
        before its last step (one that comes later, while its last checkpoint is written, lets
        it finish: there is nothing left to stop)."""
        try:
            self._setup()
            yield self._started()
            yield from self._set_aside
            has_heldout = bool(self.data.heldout)
            if self.state.step == 0 and has_heldout:
                event = self._evaluate()
                self.state.cer_before = event.cer
                self._record_eval(event)
                yield event
            if (yield from self._loop(has_heldout)):
                return
            yield self._finish()
        finally:
            if self._claim is not None:  # the next run may have the folder
                self._claim.close()

    def _steps(self) -> Iterator[Step]:
        """The optimizer steps from where the state says the job is."""
        cfg, s = self.cfg, self.state
        return steps_from(
            Cursor(s.epoch, s.index),
            self.train_lengths,
            max_batch_samples=int(cfg.micro_batch_seconds * SAMPLE_RATE),
            step_samples=int(cfg.batch_seconds * SAMPLE_RATE),
            seed=cfg.seed,
            multiple_of=self.acc.num_processes,
        )

    def _tick(self, step_time: float) -> float:
        """Read the job's clock and phases' seconds (agreed by all processes: a time limit
        stops all at the same step); returns the agreed step time."""
        local, p = self._prior + _now() - self._began, self.phases
        self.clock, step_time, evaluation, save, refit, write = self._agreed(
            local, step_time, p.evaluation, p.save, p.refit, p.write
        )
        self.phases = replace(p, evaluation=evaluation, save=save, refit=refit, write=write)
        if self.state.warmup_seconds is None and self.state.step >= self.cfg.warmup_steps:
            self.state.warmup_seconds = self.clock
        return step_time

    def _loop(self, has_heldout: bool) -> Generator[JobEvent, None, bool]:
        """The steps, evaluations and checkpoints; returns True when cancelled (JobCancelled
        is its last event), False once every step is done. Under a time limit the steps stop
        early enough for the last one's evaluation and checkpoint and the finish (the tuned
        model's write and the calibration refit), as timed so far, to end within it."""
        cfg, s = self.cfg, self.state
        stream = self._steps()
        step_time = None
        self._tick(0.0)
        limit = cfg.max_minutes
        to_go = cfg.steps - s.step if limit is None or self.clock < limit * 60 else 0
        if to_go == 0 and s.step == 0:
            log.warning("max_minutes=%g: the set-up took all of it; no step was run", limit)
        while to_go > 0:
            step = next(stream)
            started = _now()
            loss = self._train_step(step)
            elapsed = _now() - started
            step_time = elapsed if step_time is None else 0.9 * step_time + 0.1 * elapsed
            s.step, s.epoch, s.index = s.step + 1, step.after.epoch, step.after.index
            step_time = self._tick(step_time)
            self.scheduler.step()  # after the clock: a time limit sets the next rate
            to_go = self._steps_that_fit(step_time)
            yield StepProgress(
                step=s.step,
                total_steps=s.step + to_go,
                loss=loss,
                learning_rate=self.scheduler.get_last_lr()[0],
                samples_per_second=step.examples / elapsed,
                eta_seconds=seconds_left(
                    s.step, to_go, replace(self.phases, step=step_time), self._cadence()
                ),
                epoch=s.epoch,
                examples=step.examples,
                seconds=elapsed,
            )
            best = False
            last = to_go == 0
            due_eval = cfg.eval_every and s.step % cfg.eval_every == 0
            if has_heldout and (due_eval or last):
                event = self._evaluate()
                best = self._record_eval(event)
                yield event
            cancelled = self._anyone(self.cancel.is_set()) and not last
            if best or cancelled or (cfg.save_every and s.step % cfg.save_every == 0) or last:
                yield self._save_checkpoint(best)
            if cancelled:
                checkpoints = self._checkpoint_dirs()
                yield JobCancelled(s.step, checkpoints[-1] if checkpoints else None)
                return True
        return False

    def _calibrate(self, folder: Path) -> str:
        """Refit the tuned model's confidence calibration on the held-out rows (shown
        confidences then mean what they say for this model), and say what became of it, for
        its card. The model is saved already: a failure here is logged and leaves its
        confidences raw."""
        if not self.data.heldout:
            return "not refitted (no held-out rows); confidences shown raw"
        try:
            from .evaluate import calibration_outcome, refit_calibration

            return calibration_outcome(
                refit_calibration(
                    folder, self.data.heldout, LoadOptions(device=self.device.type, backend="torch")
                )
            )
        except Exception as e:  # the job's result stands without it (an import failure too)
            log.warning("%s: confidence calibration not refitted (%s)", folder, e)
            return f"not refitted ({e}); confidences shown raw"

    def _finish(self) -> JobFinished:
        """Save the tuned model: the step the selection share chose (or the last step, none
        chosen), with the report share's CER at that step, measured when it was evaluated."""
        cfg, s = self.cfg, self.state
        best_dir = self.ckpt_root / f"step-{s.best_step:07d}"
        if s.best_cer is not None and s.best_step != s.step and best_dir.is_dir():
            self._load_weights(best_dir)
        saved_step = s.best_step if s.best_cer is not None else s.step
        card = self._card(saved_step)
        fingerprint = _fingerprint(self._inner())
        adapter_dir = None
        if self.acc.is_main_process:
            adapter_dir = self._write_model(card)
            replace(card, calibration=self._calibrate(self.out / "model")).write(self.out / "model")
            shutil.rmtree(self.out / _CACHE, ignore_errors=True)  # rebuilt if a job reuses out
        self.acc.wait_for_everyone()
        return JobFinished(
            JobResult(
                model_dir=self.out / "model",
                adapter_dir=adapter_dir if cfg.method == "lora" else None,
                cer_before=s.cer_before,
                cer_after=card.cer_after,
                best_step=saved_step,
                steps=s.step,
                fingerprint=fingerprint,
                selection_rows=card.selection_rows,
            )
        )

    def _card(self, saved_step: int) -> ModelCard:
        """The tuned model's card, of `saved_step` (its calibration is added once refitted)."""
        cfg, s, data = self.cfg, self.state, self.data
        report, selection = heldout_shares(len(data.heldout), s.split_heldout)
        return ModelCard(
            base_model=cfg.model,
            method=cfg.method,
            steps=s.step,
            train_examples=len(data.train),
            train_seconds=sum(self.train_lengths) / SAMPLE_RATE,
            heldout_examples=len(data.heldout),
            cer_before=s.cer_before,
            cer_after=_cer_at(s.history, saved_step),
            data=cfg.data,
            added_chars="".join(data.added_chars),
            normalization=data.normalization,
            cer_rows=len(report),
            selection_rows=len(selection),
        )

    def _write_model(self, card: ModelCard) -> Path | None:
        """Write the tuned model (and a LoRA job's adapter, whose folder is returned) to
        output_dir, as the model being tuned is now; the estimate times it too."""
        model, adapter_dir = self._inner(), None
        try:
            if self.cfg.method == "lora":
                adapter_dir = save_adapter(model, self.processor, self.out / "adapter", card)
            save_merged(model, self.processor, self.out / "model", card, self.data.lm_text)
        except OSError as e:
            raise self._disk_full("the tuned model", e) from e
        return adapter_dir


def _fingerprint(model: torch.nn.Module) -> str:
    """sha256 over the trained weights in name order (compares processes and runs)."""

    digest = hashlib.sha256()
    for name, tensor in sorted(trainable_state(model).items()):
        digest.update(name.encode())
        digest.update(tensor.float().numpy().tobytes())
    return digest.hexdigest()


def _tensor_bytes(model: torch.nn.Module) -> int:
    """The bytes of `model`'s weights (a LoRA model's base and adapter)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def _scaled(seconds: float, bytes_to: int, bytes_from: int) -> float:
    """`seconds` of work on `bytes_from` bytes, scaled to `bytes_to` (0: nothing to scale by)."""
    return seconds * bytes_to / bytes_from if bytes_from > 0 else 0.0


_KEPT_PHASES = ("evaluation", "refit", "save", "write")  # what a resumed run cannot time first


def _kept_phases(phases: PhaseSeconds | dict) -> dict:
    """The phase seconds a checkpoint keeps for a resumed run (`_State.phases`), of `phases`
    or of a checkpoint's record of them (those it lacks left out: their priors stand)."""
    if isinstance(phases, PhaseSeconds):
        return {name: getattr(phases, name) for name in _KEPT_PHASES}
    return {name: float(phases[name]) for name in _KEPT_PHASES if name in phases}


def _optimizer_state(path: Path) -> tuple[dict, dict, dict]:
    """The optimizer, scheduler and scaler states of a checkpoint's optimizer file."""
    saved = torch.load(path, weights_only=True, map_location="cpu")
    return saved["optimizer"], saved["scheduler"], saved["scaler"]


def _sync(*paths: Path) -> None:
    """Force files, or a folder's entries, to the disk. Windows cannot open a folder, and
    flushes a file only through a handle that may write: folders are left to it there."""
    for path in paths:
        folder = path.is_dir()
        if folder and os.name == "nt":
            continue
        fd = os.open(path, os.O_RDONLY if folder else os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _gist(error: Exception) -> str:
    """The telling line of a load_state_dict error (its first says only that there were some)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[1] if len(lines) > 1 else (lines[0] if lines else type(error).__name__)


def _normalized(audio: np.ndarray, normalize: bool) -> np.ndarray:
    if normalize:  # as Wav2Vec2FeatureExtractor does: zero mean, unit variance per utterance
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
    return audio


def run_job(
    config: TuneConfig, cancel: threading.Event | None = None, resume: bool = False
) -> Iterator[JobEvent]:
    """Run a tuning job, yielding events. Expected failures (bad data, no disk space, a model
    that will not load) end in one `JobFailed` with a one-line message, never a traceback.
    Under `max_minutes` the job, its finish included (as timed while it runs), ends by then."""
    from engine.model import ModelLoadError
    from engine.registry import WHISPER, family_of

    try:
        cancel = cancel or threading.Event()
        if family_of(config.model) is WHISPER:
            from .whisper_job import run_whisper_job

            yield from run_whisper_job(config.resolved(), cancel, resume)
            return
        yield from Job(config.resolved(), cancel, resume).run()
    except (ValueError, OSError, ModelLoadError, RuntimeError) as e:
        log.info("job failed", exc_info=True)  # the traceback under `tingxie-cli -v`
        yield JobFailed.of(e)
