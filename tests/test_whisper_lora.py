"""Tuning Whisper with LoRA end to end (engine.tune.whisper_lora): a tiny random Whisper the
project builds (with Whisper-base's tokenizer, so the test skips without the fixture) learns a
real clip's text, the merged model is converted by CTranslate2's converter, and the result
loads and transcribes through the same engine API."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.audio import load_audio
from engine.loader import load_model, transcriber_for
from engine.model import ModelLoadError
from engine.results import Progress, Segment
from engine.tune.whisper_lora import WhisperLoraOptions, build_tiny_whisper, tune_whisper_lora
from engine.whisper import WHISPER_BASE_DIR, LoadedWhisper


@pytest.mark.slow
def test_whisper_lora_trains_converts_and_transcribes(tmp_path, shared_audio):
    if not (WHISPER_BASE_DIR / "tokenizer.json").is_file():
        pytest.skip(f"{WHISPER_BASE_DIR} is absent: run packaging/fetch-whisper-base.py")
    from engine.tune.whisper_lora import convert_for_ctranslate2

    # the base as the app runs Whisper: a CTranslate2 folder, converted back to train
    base = convert_for_ctranslate2(
        build_tiny_whisper(tmp_path / "base", WHISPER_BASE_DIR), tmp_path / "base-ct2"
    )
    audio = load_audio(shared_audio / "fireredasr2s_hello_zh.wav")
    options = WhisperLoraOptions(steps=10, learning_rate=2e-2)
    ready, *steps = tune_whisper_lora(base, [(audio, "你好世界")], tmp_path / "job", options)
    assert 0 < ready.trainable_parameters < ready.total_parameters
    assert not (tmp_path / "job" / "base-hf").exists()  # the converted base: a cache, removed
    assert [s.step for s in steps] == list(range(1, 11))
    assert steps[-1].loss < 0.7 * steps[0].loss  # it learns the text (measured 12.8 → 6.3)
    ct2 = tmp_path / "job" / "model"
    assert (ct2 / "model.bin").is_file() and (ct2 / "tokenizer.json").is_file()
    model = load_model(ct2)
    assert isinstance(model, LoadedWhisper)
    items, info = transcriber_for(model).transcribe(audio)
    records = list(items)
    assert isinstance(records[-1], Progress) and records[-1].fraction == 1.0
    assert info.attention == "ctranslate2"
    for segment in (r for r in records if isinstance(r, Segment)):
        assert all(0 <= c.confidence <= 1 and c.start <= c.end for c in segment.chars)


def _need_whisper_base() -> None:
    if not (WHISPER_BASE_DIR / "model.bin").is_file():
        pytest.skip(f"{WHISPER_BASE_DIR} is absent: run packaging/fetch-whisper-base.py")


def test_ctranslate2_folder_converts_back_to_the_same_weights(tmp_path):
    """hf_from_ctranslate2 undoes CTranslate2's converter: every parameter comes back (the fused
    projections split again), equal to the original rounded to the folder's float16."""
    import json

    import torch
    from transformers import WhisperForConditionalGeneration

    from engine.tune.whisper_lora import convert_for_ctranslate2, hf_from_ctranslate2

    _need_whisper_base()
    original = build_tiny_whisper(tmp_path / "hf", WHISPER_BASE_DIR, seed=3)
    ct2 = convert_for_ctranslate2(original, tmp_path / "ct2")
    back = hf_from_ctranslate2(ct2, tmp_path / "back")
    a = WhisperForConditionalGeneration.from_pretrained(original).state_dict()
    b = WhisperForConditionalGeneration.from_pretrained(back).state_dict()
    assert set(a) == set(b)
    for name, value in a.items():
        assert torch.equal(value.half().float(), b[name]), name
    # and again to CTranslate2: the same language, suppression and alignment settings
    again = convert_for_ctranslate2(back, tmp_path / "again")
    config = json.loads((ct2 / "config.json").read_text(encoding="utf-8"))
    assert json.loads((again / "config.json").read_text(encoding="utf-8")) == config
    assert config["alignment_heads"]  # what word timestamps need


def test_a_folder_that_is_not_ctranslate2_whisper_is_refused_with_what_to_choose(tmp_path):
    from engine.tune.whisper_lora import hf_from_ctranslate2

    with pytest.raises(ModelLoadError, match=r"missing model\.bin.*copy the complete"):
        hf_from_ctranslate2(tmp_path, tmp_path / "out")  # as loading it says (engine.whisper)


@pytest.mark.slow
def test_whisper_base_converted_back_decodes_as_ctranslate2_does(tmp_path, shared_audio):
    """The app's own Whisper-base (CTranslate2, offline) becomes a trainable model: on a real
    clip the converted model's next-token choices equal CTranslate2's greedy decode at every
    step, and its encoder's output agrees to float16 rounding."""
    import ctranslate2
    import numpy as np
    import torch
    from transformers import (
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    from engine.tune.whisper_lora import convert_for_ctranslate2, hf_from_ctranslate2

    _need_whisper_base()
    hf = hf_from_ctranslate2(WHISPER_BASE_DIR, tmp_path / "hf")
    model = WhisperForConditionalGeneration.from_pretrained(hf).eval()
    tokenizer = WhisperTokenizerFast.from_pretrained(hf)
    audio = load_audio(shared_audio / "funasr_asr_example_zh.wav")
    features = WhisperFeatureExtractor.from_pretrained(hf)(
        audio, sampling_rate=16_000, return_tensors="np"
    ).input_features
    reference = ctranslate2.models.Whisper(str(WHISPER_BASE_DIR), compute_type="float32")
    view = ctranslate2.StorageView.from_array(features.astype(np.float32))
    prompt = tokenizer.convert_tokens_to_ids(
        ["<|startoftranscript|>", "<|zh|>", "<|transcribe|>", "<|notimestamps|>"]
    )
    tokens = reference.generate(view, [prompt], beam_size=1)[0].sequences_ids[0]
    assert len(tokens) > 10  # a sentence of this clip, not an empty decode
    targets = [*tokens, tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    with torch.no_grad():
        encoded = model.model.encoder(torch.from_numpy(features)).last_hidden_state.numpy()
        logits = model(
            input_features=torch.from_numpy(features),
            decoder_input_ids=torch.tensor([prompt + tokens]),
        ).logits[0, len(prompt) - 1 :]
    assert logits.argmax(-1).tolist() == targets
    assert np.abs(encoded - np.array(reference.encode(view))).max() < 1e-2
    # converted again, it carries Whisper-base's own settings (its alignment heads time words)
    again = convert_for_ctranslate2(hf, tmp_path / "ct2")
    config = (again / "config.json").read_text(encoding="utf-8")
    assert config == (WHISPER_BASE_DIR / "config.json").read_text(encoding="utf-8")


def _whisper_job(tmp_path, shared_audio):
    """A 2-step job on a tiny Whisper in a CTranslate2 folder (as the app runs Whisper) and
    five real clips with their .txt, output to tmp_path/job."""
    import shutil

    from engine.tune.config import TuneConfig
    from engine.tune.whisper_lora import convert_for_ctranslate2

    _need_whisper_base()
    base = convert_for_ctranslate2(
        build_tiny_whisper(tmp_path / "hf", WHISPER_BASE_DIR), tmp_path / "base"
    )
    data = tmp_path / "data"
    data.mkdir()
    rows = (shared_audio / "manifest.tsv").read_text(encoding="utf-8").splitlines()[1:6]
    for row in rows:
        name, _, text = row.split("\t")[:3]
        shutil.copy(shared_audio / name, data / name)
        (data / name).with_suffix(".txt").write_text(text, encoding="utf-8")
    return TuneConfig(
        model=str(base),
        data=str(data),
        output_dir=str(tmp_path / "job"),
        steps=2,
        learning_rate=1e-3,
        heldout_fraction=0.4,
    )


@pytest.mark.slow
def test_a_whisper_job_that_died_after_training_resumes_to_its_end(
    tmp_path, shared_audio, monkeypatch
):
    """Killed while measuring the held-out CER after training (out of memory, say), a job has
    its model written and no card: the Tune page offers it for resume, and resuming finishes
    it. (Before: resume refused, as the folder "already holds a tuned model".)"""
    from engine.tune import whisper_job
    from engine.tune.events import JobFailed, JobFinished, StepProgress
    from engine.tune.jobs import JobFolder
    from engine.tune.loop import run_job

    config = _whisper_job(tmp_path, shared_audio)
    job = JobFolder(config.output_dir)
    measure = whisper_job.heldout_rows

    def killed_after_training(model_dir, heldout, config, stop=None):
        if Path(model_dir) == job.model_dir:
            raise RuntimeError("killed")
        return measure(model_dir, heldout, config, stop=stop)

    monkeypatch.setattr(whisper_job, "heldout_rows", killed_after_training)
    first = list(run_job(config))
    assert isinstance(first[-1], JobFailed) and first[-1].message == "killed"
    assert job.model_dir.is_dir() and job.state() == "stopped"
    monkeypatch.setattr(whisper_job, "heldout_rows", measure)
    resumed = list(run_job(config, resume=True))
    finished = resumed[-1]
    assert isinstance(finished, JobFinished), finished
    assert not any(isinstance(e, StepProgress) for e in resumed)  # its steps were all done
    assert finished.result.steps == 2 and finished.result.cer_after is not None
    assert finished.result.cer_before == first[1].cer  # measured once, by the first run
    assert job.state() == "finished"


@pytest.mark.slow
def test_a_tuning_job_on_a_whisper_folder_runs_like_a_ctc_one(tmp_path, shared_audio):
    """run_job on a Whisper base (a CTranslate2 folder, as the app runs Whisper): the CTC jobs'
    events in their order, held-out CER before and after by the transcriber users get, a
    model folder with its card that loads; a cancel keeps a checkpoint and no model, and
    resuming it ends with the weights of the run that was not stopped."""
    import dataclasses
    import json
    import threading

    import torch
    from safetensors.torch import load_file

    from engine.tune.events import (
        CheckpointSaved,
        Evaluated,
        JobCancelled,
        JobFinished,
        JobStarted,
        StepProgress,
    )
    from engine.tune.export import read_card
    from engine.tune.jobs import JobFolder
    from engine.tune.loop import run_job

    config = _whisper_job(tmp_path, shared_audio)
    base = config.model
    events = list(run_job(config))
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["JobStarted", "Evaluated", "StepProgress", "StepProgress", "CheckpointSaved",
                     "Evaluated", "JobFinished"]  # fmt: skip
    started, before, *_, after, finished = events
    assert (
        isinstance(started, JobStarted) and started.train_examples + started.heldout_examples == 5
    )
    assert 0 < started.trainable_parameters < started.total_parameters
    assert isinstance(before, Evaluated) and isinstance(after, Evaluated)
    assert (before.step, after.step) == (0, 2) and before.result.reference_chars > 0
    assert isinstance(events[2], StepProgress) and events[2].total_steps == 2
    assert isinstance(finished, JobFinished)
    result = finished.result
    assert (result.cer_before, result.cer_after) == (before.cer, after.cer)
    assert isinstance(load_model(result.model_dir), LoadedWhisper)
    card = read_card(result.model_dir)
    assert card.family == "whisper" and card.steps == 2 and card.base_model == str(base)
    readme = (result.model_dir / "README.md").read_text("utf-8")
    assert "library_name: ctranslate2" in readme
    # two held-out rows are too few to fit a calibration: the card says so
    assert card.calibration.startswith("not refitted (too few held-out characters")
    assert f"- confidence calibration: {card.calibration}" in readme
    adapter = json.loads((result.adapter_dir / "adapter_config.json").read_text("utf-8"))
    assert adapter["base_model_name_or_path"] == str(base)  # what it adapts, not a removed copy

    saved = events[4]
    assert isinstance(saved, CheckpointSaved) and saved.step == 2 and saved.path.is_dir()

    cancel = threading.Event()
    stopped = []
    other = dataclasses.replace(config, output_dir=str(tmp_path / "b"))
    for event in run_job(other, cancel=cancel):
        stopped.append(event)
        if isinstance(event, StepProgress):
            cancel.set()
    assert isinstance(stopped[-1], JobCancelled) and stopped[-1].step == 1
    assert stopped[-1].checkpoint == tmp_path / "b" / "checkpoints" / "step-0000001"
    assert not (tmp_path / "b" / "model").exists() and not (tmp_path / "b" / "base-hf").exists()
    assert JobFolder(tmp_path / "b").state() == "stopped"  # the Tune page offers Resume

    resumed = list(run_job(other, resume=True))
    assert isinstance(resumed[0], JobStarted) and resumed[0].resumed_from_step == 1
    # the base's CER is not measured again: the first run's is kept
    assert [e.step for e in resumed if isinstance(e, StepProgress)] == [2]
    assert [e.step for e in resumed if isinstance(e, Evaluated)] == [2]
    again = resumed[-1]
    assert isinstance(again, JobFinished) and again.result.cer_before == result.cer_before
    one = load_file(result.adapter_dir / "adapter_model.safetensors")
    two = load_file(again.result.adapter_dir / "adapter_model.safetensors")
    assert one.keys() == two.keys()
    for name, value in one.items():  # same data order, same optimizer state: same weights
        assert torch.allclose(value, two[name], atol=1e-6), name
    assert JobFolder(tmp_path / "b").state() == "finished"


@pytest.mark.slow
def test_the_tune_page_checks_and_measures_a_whisper_job(tmp_path, shared_audio):
    """What the Tune page runs before a job, for a Whisper base: the data check knows Whisper
    writes any character and hears 30 s at most; the estimate times real steps."""
    import numpy as np

    from engine.audio import write_wav
    from engine.tune.config import TuneConfig
    from engine.tune.estimate import estimate
    from engine.tune.prepare import check_data
    from engine.tune.whisper_lora import convert_for_ctranslate2

    _need_whisper_base()
    base = convert_for_ctranslate2(
        build_tiny_whisper(tmp_path / "hf", WHISPER_BASE_DIR), tmp_path / "base"
    )
    data = tmp_path / "data"
    data.mkdir()
    clip = load_audio(shared_audio / "fireredasr2s_hello_zh.wav")
    for i, text in enumerate(["你好世界", "𠀀龘靐齉", "再见"]):  # rare characters: writable
        write_wav(data / f"{i}.wav", clip * (1 - 0.1 * i))  # three clips, not one given 3 texts
        (data / f"{i}.txt").write_text(text, encoding="utf-8")
    write_wav(data / "long.wav", np.tile(clip, int(31 * 16_000 / len(clip)) + 1))
    (data / "long.txt").write_text("很长", encoding="utf-8")
    # A paragraph pasted for 25 s of audio: more tokens than Whisper's decoder holds (448), which
    # passed the check (a CTC rule of a frame per character) and crashed the job's step
    write_wav(data / "paragraph.wav", np.tile(clip, int(25 * 16_000 / len(clip)) + 1))
    paragraph = "".join(chr(0x4E00 + 37 * i % 20000) for i in range(500))
    (data / "paragraph.txt").write_text(paragraph, encoding="utf-8")
    config = TuneConfig(model=str(base), data=str(data), output_dir="", steps=3)
    check = check_data([data], config)
    assert {issue.kind for issue in check.issues} <= {
        "skipped_rows",
        "little_data",
        "small_heldout",
    }
    assert not check.report.unknown_chars
    skipped = {Path(f.origin).name: (f.kind, f.detail) for f in check.report.skipped}
    assert skipped.keys() == {"long.wav", "paragraph.wav"} and skipped["long.wav"][0] == "too_long"
    kind, detail = skipped["paragraph.wav"]
    assert kind == "text_too_long" and "the model's decoder takes 448" in detail
    assert "CTC" not in detail
    measured = estimate(config, steps=2)
    assert measured.measured_steps == 2 and measured.seconds_per_step > 0
    assert measured.steps == 3 and measured.evaluations == 1 and measured.eval_seconds > 0
    assert measured.refit_seconds == measured.eval_seconds  # the same pass, on the tuned model
    assert measured.peak_memory_bytes > 0


def test_the_learning_rate_warms_up_decays_and_follows_a_shrinking_step_count():
    from engine.tune.whisper_lora import learning_rate

    assert [round(learning_rate(1.0, d, 2, 4), 2) for d in range(5)] == [0.5, 1.0, 0.67, 0.33, 0]
    assert learning_rate(1e-3, 0, 10, 1) == pytest.approx(1e-3)  # a limit left one step
    assert learning_rate(1e-3, 3, 10, 3) == 0.0  # done: nothing more to learn at


@pytest.mark.slow
def test_a_time_limit_ends_whisper_training_with_the_rate_at_zero(tmp_path, shared_audio):
    """Out of time after the first step: the job ends there, its rate already 0, and the
    model is still written (a time limit is not a cancel)."""
    _need_whisper_base()
    base = build_tiny_whisper(tmp_path / "base", WHISPER_BASE_DIR)
    audio = load_audio(shared_audio / "fireredasr2s_hello_zh.wav")
    options = WhisperLoraOptions(steps=10)
    _, *steps = tune_whisper_lora(
        base, [(audio, "你好")], tmp_path / "job", options, steps_that_fit=lambda *_: 0
    )
    assert [(s.step, s.total_steps, s.learning_rate) for s in steps] == [(1, 1, 0.0)]
    assert (tmp_path / "job" / "model" / "model.bin").is_file()


@pytest.mark.slow
def test_a_whisper_checkpoint_resumes_only_the_job_that_saved_it(tmp_path, shared_audio):
    """Stopped between steps, a run leaves one checkpoint and no model; resuming it with other
    data, or from a damaged checkpoint, is refused with the folder and what to do."""
    from engine.tune.whisper_lora import WhisperCheckpoints, WhisperSaved

    _need_whisper_base()
    base = build_tiny_whisper(tmp_path / "base", WHISPER_BASE_DIR)
    audio = load_audio(shared_audio / "fireredasr2s_hello_zh.wav")
    options = WhisperLoraOptions(steps=4, batch_size=1)
    where = WhisperCheckpoints(tmp_path / "job" / "checkpoints")
    examples = [(audio, "你好"), (audio, "世界")]
    calls = iter([False, False, True])  # before steps 1, 2 and 3
    events = list(
        tune_whisper_lora(
            base, examples, tmp_path / "job", options, checkpoints=where, stop=lambda: next(calls)
        )
    )
    assert events[-1] == WhisperSaved(2, where.folder / "step-0000002", stopped=True)
    assert [p.name for p in where.folder.iterdir()] == ["step-0000002"]
    assert not (tmp_path / "job" / "model").exists()

    def resume(examples):
        return next(
            tune_whisper_lora(
                base, examples, tmp_path / "job", options, checkpoints=where, resume=True
            )
        )

    assert resume(examples).resumed_step == 2
    with pytest.raises(ValueError, match=r"step-0000002: saved by a job with other data"):
        resume([(audio, "你好"), (audio, "再见")])
    (where.folder / "step-0000002" / "trainable.safetensors").write_bytes(b"not weights")
    with pytest.raises(ValueError, match=r"no checkpoint there can be read.*step-0000002.*afresh"):
        resume(examples)
