"""The benches' helpers and command lines: what they score, cache and refuse (no bench is run at
its real size; benches are not run by CI, so these keep them honest)."""

from __future__ import annotations

import ast
import functools
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.audio import load_audio, write_wav
from engine.results import Char, Segment

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

MINE = (
    "bench_transcribe",
    "bench_app",
    "bench_store",
    "bench_review",
    "bench_review_ui",
    "bench_whisper",
    "bench_speakers",
)


def _bench(name: str):
    return importlib.import_module(name)


def _refusal(capsys, run) -> str:
    """What a bench printed as `run` (its parse_args or main) refused the command line: it
    exits with argparse's code 2 and no traceback."""
    with pytest.raises(SystemExit) as stop:
        run()
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def _clip(reference: str, hypothesis: str):
    """A bench_review clip whose transcript is `hypothesis`, one character every 0.25 s."""
    br = _bench("bench_review")
    chars = tuple(Char(ch, 0.25 * k, 0.25 * k + 0.2, 0.5) for k, ch in enumerate(hypothesis))
    end = 0.25 * len(hypothesis)
    return br.Clip(reference, [Segment(0, 0.0, end, chars)], end + 0.5)


def _run_review(monkeypatch, clips, *argv: str) -> None:
    """bench_review's main on `clips` instead of a model's transcripts."""
    br = _bench("bench_review")
    monkeypatch.setattr(br, "transcribe_all", lambda *args: clips)
    monkeypatch.setattr(sys, "argv", ["bench_review.py", *argv])
    br.main()


# ---- fault 5: bench_review scores normalized text, as evaluate does ----------------------------


def test_review_traditional_form_and_punctuation_are_no_errors():
    br = _bench("bench_review")
    clip = _clip("一二线城市虽然也处于调整中", "一二線城市，虽然也处于调整中。")
    assert br.errors_of(0, clip) == []


def test_review_error_points_at_the_character_after_normalization():
    """A wrong character after a comma and a Traditional one is placed at its own Char."""
    br = _bench("bench_review")
    clip = _clip("一二线城市虽然", "一二線，城市虽燃")
    (error,) = br.errors_of(0, clip)
    assert (error.position, error.deletion) == (7, False)  # 燃: the 8th Char, comma counted
    assert error.time == pytest.approx(0.25 * 7)


def test_review_cer_line_is_engine_metrics_cer(monkeypatch, capsys):
    clips = [_clip("一二线城市虽然也处于调整中", "一二線城市虽然也处于调整中")] * 2
    _run_review(monkeypatch, clips, "--thresholds", "0.9", "--limit", "2")
    out = capsys.readouterr().out
    assert "0 errors in 26 reference characters (CER 0.0%" in out


# ---- fault 4: --headline is a measured threshold; 0 / 0 is no ratio ---------------------------


def test_review_refuses_a_headline_not_among_the_thresholds(monkeypatch, capsys):
    clips = [_clip("一二线城市", "一二線城巿")]
    with pytest.raises(SystemExit) as stop:
        _run_review(monkeypatch, clips, "--thresholds", "0.3", "0.95", "--headline", "0.9")
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--headline 0.9 is not among --thresholds 0.3 0.95" in err


def test_review_no_errors_found_by_either_is_not_infinite(monkeypatch, capsys):
    clips = [_clip("一二线城市", "一二線城市")] * 3
    _run_review(monkeypatch, clips, "--thresholds", "0.9")
    out = capsys.readouterr().out
    assert "inf" not in out
    assert out.splitlines()[-1].startswith("guided review: n/a the errors")


def test_review_ratio_text():
    br = _bench("bench_review")
    assert [br.ratio_text(*pair) for pair in ((0, 0), (3, 0), (5, 2))] == ["n/a", "inf", "2.5x"]


# ---- fault 1: the long file's cache is per clips folder --------------------------------------


def _clips_folder(folder: Path, freq: float) -> Path:
    folder.mkdir()
    t = np.arange(16_000) / 16_000
    write_wav(folder / "tone.wav", (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32))
    (folder / "manifest.tsv").write_text("file\ttext\ntone.wav\tx\n", encoding="utf-8")
    return folder


def test_long_audio_is_built_from_the_audio_dir_given(tmp_path, monkeypatch):
    bt = _bench("bench_transcribe")
    monkeypatch.setattr(bt, "CACHE", tmp_path / "cache")
    (tmp_path / "cache").mkdir()
    low = bt.build_long_audio(0.05, clips_dir=_clips_folder(tmp_path / "low", 220.0))
    high = bt.build_long_audio(0.05, clips_dir=_clips_folder(tmp_path / "high", 880.0))
    assert low != high
    assert not np.array_equal(load_audio(low), load_audio(high))
    # the same folder again: the cached file
    assert bt.build_long_audio(0.05, clips_dir=tmp_path / "low") == low


def test_long_audio_is_rebuilt_when_the_manifest_changes(tmp_path, monkeypatch):
    bt = _bench("bench_transcribe")
    monkeypatch.setattr(bt, "CACHE", tmp_path / "cache")
    (tmp_path / "cache").mkdir()
    clips = _clips_folder(tmp_path / "clips", 220.0)
    first = bt.build_long_audio(0.05, clips_dir=clips)
    write_wav(clips / "other.wav", np.zeros(8000, np.float32))
    (clips / "manifest.tsv").write_text("file\ttext\nother.wav\tx\n", encoding="utf-8")
    assert bt.build_long_audio(0.05, clips_dir=clips) != first


def test_exports_are_cached_per_source_model(tmp_path, monkeypatch):
    """A --density trained run timed the random model's cached exports on four sides."""
    bt = _bench("bench_transcribe")
    monkeypatch.setattr(bt, "CACHE", tmp_path)
    made = []
    export = importlib.import_module("engine.export_onnx")
    monkeypatch.setattr(export, "export_onnx", lambda model, out, q: made.append((model, out)))
    plain = bt.build_exports(tmp_path / "xlsr53-large-random", ["onnxruntime-int8"])
    dense = bt.build_exports(tmp_path / "xlsr53-large-random-dense", ["onnxruntime-int8"])
    assert plain["onnxruntime-int8"] != dense["onnxruntime-int8"]
    assert [out for _, out in made] == [plain["onnxruntime-int8"], dense["onnxruntime-int8"]]


def test_stream_ratio_of_a_strategy_that_showed_nothing_is_na(capsys):
    """No character shown is no latency: not a 1.00x that reads as "as fast as naive"."""
    bs = _bench("bench_stream")
    never = np.full(3, np.nan)
    bs.report("stream", never, 1.0, 2.0, 0.0, 500.0)
    bs.report("naive", np.array([0.2, 0.3]), 1.0, 2.0, 1.0, None)
    stream, naive = capsys.readouterr().out.splitlines()
    assert stream.endswith(" n/a") and "x" not in stream.split()[-1]
    assert naive.endswith(" 1.00x")


# ---- fault 2: bench_store runs against the store as it indexes now ---------------------------


def test_store_bench_runs_on_a_small_transcript(monkeypatch, capsys):
    bs = _bench("bench_store")
    monkeypatch.setattr(sys, "argv", ["bench_store.py", "--chars", "400", "--edits", "3"])
    bs.main()
    out = capsys.readouterr().out
    assert "store (whole transcript re-indexed)" in out
    assert "search re-index:" in out.splitlines()[-1]


# ---- fault 3: every bench's --help prints ----------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [*MINE, "bench_train", "bench_accuracy", "bench_lm", "bench_learn", "bench_learn_whisper"],
)
def test_bench_help(name, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--help"])
    with pytest.raises(SystemExit) as stop:
        _bench(name).parse_args()
    assert stop.value.code == 0
    assert "usage:" in capsys.readouterr().out


# ---- fault 6: bad arguments are refused naming the option -------------------------------------


@pytest.mark.parametrize(
    ("name", "argv", "option"),
    [
        ("bench_store", ["--chars", "20"], "--chars"),
        ("bench_store", ["--edits", "0"], "--edits"),
        ("bench_review", ["--limit", "0"], "--limit"),
        ("bench_review", ["--thresholds", "1.5"], "--thresholds"),
        ("bench_review_ui", ["--decisions", "0"], "--decisions"),
        ("bench_review_ui", ["--chars", "10"], "--chars"),
        ("bench_speakers", ["--sweep", "abc"], "--sweep"),
        ("bench_speakers", ["--sweep", "0.3,2.5"], "--sweep"),
        ("bench_speakers", ["--count", "0"], "--count"),
        ("bench_transcribe", ["--minutes", "0"], "--minutes"),
        ("bench_transcribe", ["--rounds", "0"], "--rounds"),
        ("bench_app", ["--minutes", "-1"], "--minutes"),
        ("bench_whisper", ["--repeat", "0"], "--repeat"),
        ("bench_whisper", ["--data", "/nonexistent/manifest.tsv"], "--data"),
        ("bench_train", ["--clip-chars", "5"], "--clip-chars"),
        ("bench_train", ["--clip-chars", "9,3"], "--clip-chars"),
        ("bench_train", ["--clip-chars", "0,3"], "--clip-chars"),
        ("bench_train", ["--memory", "--hours", "1h,5h"], "--hours"),
        ("bench_train", ["--memory", "--hours", "5,1"], "--hours"),
        ("bench_train", ["--repeat", "0"], "--repeat"),
        ("bench_train", ["--clips", "0"], "--clips"),
        ("bench_train", ["--epochs", "0"], "--epochs"),
        ("bench_train", ["--variants", "hf,tingxie-fast"], "--variants"),
        ("bench_train", ["--variants", "tingxie-bf16", "--skip-bf16"], "--variants"),
        ("bench_train", ["--warmup", "-1"], "--warmup"),
        ("bench_train", ["--profile-steps", "-2"], "--profile-steps"),
        ("bench_transcribe", ["--chunk-seconds", "0"], "--chunk-seconds"),
        ("bench_transcribe", ["--chunk-seconds", "nan"], "--chunk-seconds"),
        ("bench_transcribe", ["--stride-seconds", "-1"], "--stride-seconds"),
        ("bench_transcribe", ["--chunk-seconds", "3"], "--stride-seconds"),
        ("bench_transcribe", ["--stride-seconds", "10"], "--chunk-seconds"),
    ],
)
def test_bench_refuses_bad_arguments(name, argv, option, monkeypatch, capsys):
    """Refused naming the option in the error line (the usage line above it names them all)."""
    monkeypatch.setattr(sys, "argv", [f"{name}.py", *argv])
    assert option in _refusal(capsys, _bench(name).parse_args).splitlines()[-1]


@pytest.mark.parametrize(
    ("name", "argv"),
    [
        ("bench_transcribe", ["--minutes", "0"]),
        ("bench_train", ["--epochs", "0"]),
        ("bench_accuracy", ["--lr", "0"]),
    ],
)
def test_benches_refuse_a_number_not_above_zero_alike(name, argv, capsys):
    """One validator for a positive number (bench_accuracy.positive_number): bench_transcribe's
    --minutes had a twin of it with its own words."""
    err = _refusal(capsys, functools.partial(_bench(name).parse_args, argv))
    assert err.splitlines()[-1].endswith(f"error: argument {argv[0]}: 0: give a number above 0")


def test_transcribe_chunks_and_strides_are_checked_as_the_engine_checks_them(tmp_path, capsys):
    """A chunk no longer than both strides is refused naming both options (the Tingxie sides
    refused it in their workers, after the model was built; the pipeline ran it)."""
    parse = _bench("bench_transcribe").parse_args
    clips = ["--audio-dir", str(_clips_folder(tmp_path / "clips", 220.0))]
    err = _refusal(capsys, lambda: parse([*clips, "--chunk-seconds", "3", "--stride-seconds", "2"]))
    assert "--chunk-seconds 3 / --stride-seconds 2" in err
    assert "must exceed twice stride_seconds" in err
    args = parse([*clips, "--chunk-seconds", "10", "--stride-seconds", "1"])
    assert (args.chunk_seconds, args.stride_seconds) == (10.0, 1.0)


def test_speakers_sweep_is_parsed():
    bsp = _bench("bench_speakers")
    assert bsp.parse_args(["--sweep", "0.3, 0.5"]).sweep == [0.3, 0.5]


# ---- bench_train: the same rows, the batch trained, options refused, memory per process -------


def _train_args(*argv: str):
    return _bench("bench_train").parse_args(["--size", "tiny", *argv])


def test_train_hf_trace_is_the_batch_trained(tmp_path, monkeypatch, tiny_model_dir):
    """The baseline's trace notes the batch each step trains, not the one the data loader
    collated ahead of it."""
    import transformers

    from engine.tune.testdata import tone_corpus

    bt = _bench("bench_train")
    monkeypatch.setattr(bt, "CACHE", tmp_path)
    manifest = tone_corpus(
        tmp_path / "data", 5, chars=bt.CORPUS_CHARS, min_chars=2, max_chars=14, seed=0
    )
    trained: list[tuple[int, int]] = []
    step = transformers.Trainer.training_step

    def recording(self, model, inputs, *more, **named):
        trained.append(tuple(inputs["input_values"].shape))
        return step(self, model, inputs, *more, **named)

    monkeypatch.setattr(transformers.Trainer, "training_step", recording)
    args = _train_args("--batch", "1", "--epochs", "1", "--warmup", "0")
    trace = bt.run_hf(tiny_model_dir, manifest, args, checkpointing=False)["trace"]
    assert len(set(trained)) == len(trained) == 5  # every batch differs: a shift would show
    assert [(u, a) for a, u, _ in trace] == [(n, pytest.approx(s / bt.SR)) for n, s in trained]


def test_train_both_sides_train_the_rows_the_job_keeps(tmp_path, monkeypatch, capsys):
    """A clip under the job's min_seconds is left out of both sides, and said so, instead of
    making the Tingxie side's replayed plan drift."""
    bt = _bench("bench_train")
    monkeypatch.setattr(bt, "CACHE", tmp_path)
    args = _train_args("--clips", "8", "--clip-chars", "1,3", "--epochs", "1", "--batch", "2")
    model_dir, manifest, note = bt.prepare(args)
    seconds = [n / bt.SR for n in bt._lengths(manifest)]
    assert 0 < len(seconds) < 8
    assert all(0.3 <= s <= 30 for s in seconds)
    assert f"{8 - len(seconds)} of 8 clips left out" in note
    assert "min_seconds" in note
    result = bt.run_tingxie(model_dir, manifest, args, "fp32", cache=True)
    assert sum(u for _, u, _ in result["trace"]) >= len(seconds) // 2


def test_train_refuses_cuda_where_there_is_none(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as stop:
        _bench("bench_train").parse_args(["--device", "cuda"])
    assert stop.value.code == 2
    assert "--device cuda" in capsys.readouterr().err


def test_train_report_without_results_says_so():
    bt = _bench("bench_train")
    with pytest.raises(SystemExit) as stop:
        bt.print_report({}, _train_args(), "")
    assert stop.value.code not in (0, None)
    assert "no variant finished" in str(stop.value.code)


def test_train_cpu_run_on_a_cuda_host_has_no_gpu_peak(monkeypatch):
    """On a CUDA host a --device cpu run reports no GPU memory (not 0, which made the ratio
    read "peak GPU memory 0 %")."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda *a, **k: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a, **k: 0)
    bt = _bench("bench_train")
    peaks = {}
    for device in ("cpu", "cuda"):
        clock = bt.Clock(0, device)
        clock.start()
        peaks[device] = clock.result(0.0)["gpu_peak"]
    assert peaks == {"cpu": None, "cuda": 0}


class _FakeProfile:
    """bench/profiling.py's Profile without torch.profiler: one started in the test process
    left a callback behind that crashed the interpreter at its exit, after every test passed."""

    def __init__(self, on: bool) -> None:
        self.on = on

    def start(self) -> None:
        pass

    def stop(self) -> str:
        return "profile: (fake)" if self.on else ""


def test_train_profile_says_the_steps_it_covers(monkeypatch):
    """--profile-steps beyond a run's last step: the profile says the steps it covered (it was
    headed "steps 3-6" for a run of 4), and a run too short to reach it says so (it printed
    nothing)."""
    bt = _bench("bench_train")
    monkeypatch.setattr(importlib.import_module("profiling"), "Profile", _FakeProfile)
    texts = []
    for profiled, steps in ((4, 4), (4, 2), (0, 4)):
        clock = bt.Clock(profile_steps=profiled)
        clock.start()
        for _ in range(steps):
            clock.step(1.0, 1, 0.5)
        texts.append(clock.result(0.0)["profile"])
    assert texts[0].startswith("steps 3-4: profile:")
    assert texts[1] == "no profile: the run ended after 2 step(s), before step 3"
    assert texts[2] == ""


def test_train_memory_peak_is_the_child_own(tmp_path, monkeypatch):
    """--memory's peak is the measuring process's own high-water mark, not one inherited from
    a parent that held more (getrusage's ru_maxrss survives fork + exec on Linux)."""
    from engine.testmodels import build_model

    bt = _bench("bench_train")
    model_dir = build_model(tmp_path / "model", "tiny")
    manifest = bt.scale_corpus(tmp_path / "data", [0.005])[0.005]
    held = np.ones(2**31 // 8)  # 2 GiB, every page touched: the parent's high-water mark
    parent_peak = _bench("bench_app").memory_mb()["VmHWM"]
    result = bt.spawn("memory", model_dir, manifest, _train_args("--memory-steps", "1"))
    del held
    assert 0 < result["start"] <= result["peak"] < parent_peak - 1024


def test_train_memory_lines_show_the_added_memory():
    bt = _bench("bench_train")
    rows = [
        dict(utterances=4, setup=1.0, wall=2.0, store=1e8, start=300.0, peak=500.0),
        dict(utterances=80, setup=9.0, wall=20.0, store=2e9, start=300.0, peak=520.0),
    ]
    row = bt.memory_row(20.0, rows[1])
    assert row.split()[-3:] == ["300", "520", "220"]
    summary = bt.memory_summary([1.0, 20.0], rows)
    assert "peak RSS 20 h / 1 h: 1.040" in summary
    assert "added 20 h / 1 h: 1.100" in summary


# ---- bench_learn*, bench_accuracy, bench_lm: options refused before any audio, imports one way ---


class _SynthesisStarted(Exception):
    """Raised by a stubbed synthesis: the bench got past its checks to its first heavy step."""


def _no_synthesis(*args, **kwargs):
    raise _SynthesisStarted


def _run_to_synthesis(monkeypatch, tmp_path, model: Path, name: str, *argv: str) -> None:
    """A bench's main on `argv`, --work in tmp_path and --model `model` (bench_learn_whisper
    has none), stopped where synthesis would start: every bench voices through
    bench_accuracy.synth_once."""
    monkeypatch.setattr(_bench("bench_accuracy"), "synth_once", _no_synthesis)
    given = ["--work", str(tmp_path / "work")]
    if name != "bench_learn_whisper":
        given += ["--model", str(model)]
    monkeypatch.setattr(sys, "argv", [f"{name}.py", *given, *argv])
    _bench(name).main()


@pytest.fixture
def whisper_base(tmp_path, monkeypatch) -> Path:
    """bench_learn_whisper's inputs, as files it can find: a Whisper folder and the real clips'
    manifest (neither read before the synthesis this module stubs)."""
    import engine.whisper

    base = tmp_path / "whisper-base"
    base.mkdir()
    (base / "model.bin").write_bytes(b"")
    real = tmp_path / "real.tsv"
    real.write_text("file\ttext\n", encoding="utf-8")
    monkeypatch.setattr(engine.whisper, "WHISPER_BASE_DIR", base)
    monkeypatch.setattr(_bench("bench_learn_whisper"), "REAL", real)
    return base


@pytest.mark.parametrize(
    "name", ["bench_learn", "bench_learn_whisper", "bench_accuracy", "bench_lm"]
)
def test_benches_reach_their_synthesis(name, tmp_path, monkeypatch, whisper_base, tiny_model_dir):
    """With the default settings each bench gets as far as its first voicing (the Whisper one
    called bench_learn.corrections without its voice argument)."""
    with pytest.raises(_SynthesisStarted):
        _run_to_synthesis(monkeypatch, tmp_path, tiny_model_dir, name)


@pytest.mark.parametrize(
    ("name", "argv", "option"),
    [
        ("bench_learn", ["--replay", "-5"], "--replay"),
        ("bench_learn", ["--replay", "1701"], "--replay"),
        ("bench_learn", ["--repeat", "0"], "--repeat"),
        ("bench_learn", ["--budget", "0.3"], "--budget"),
        ("bench_learn", ["--lr", "0"], "--lr"),
        ("bench_learn", ["--rank", "0"], "--rank"),
        ("bench_learn", ["--steps", "0"], "--steps"),
        ("bench_learn", ["--warmup", "-1"], "--warmup"),
        ("bench_learn", ["--mask-length", "0"], "--mask-length"),
        ("bench_learn", ["--mask-time", "1"], "--mask-time"),
        ("bench_learn", ["--full-steps", "1"], "--full-steps"),
        ("bench_learn", ["--threads", "0"], "--threads"),
        ("bench_learn", ["--model", "/nonexistent/model"], "--model"),
        ("bench_learn_whisper", ["--replay", "-1"], "--replay"),
        ("bench_learn_whisper", ["--budget", "0"], "--budget"),
        ("bench_learn_whisper", ["--lr", "0"], "--lr"),
        ("bench_learn_whisper", ["--rank", "0"], "--rank"),
        ("bench_accuracy", ["--steps", "0"], "--steps"),
        ("bench_accuracy", ["--steps", "-5"], "--steps"),
        ("bench_accuracy", ["--lr", "0"], "--lr"),
        ("bench_accuracy", ["--replay", "5000"], "--replay"),
        ("bench_accuracy", ["--replay", "-1"], "--replay"),
        ("bench_accuracy", ["--model", "/nonexistent/model"], "--model"),
        ("bench_lm", ["--steps", "0"], "--steps"),
        ("bench_lm", ["--lr", "-0.001"], "--lr"),
        ("bench_lm", ["--model", "/nonexistent/model"], "--model"),
    ],
)
def test_benches_refuse_bad_options_before_any_audio(
    name, argv, option, tmp_path, monkeypatch, capsys, whisper_base, tiny_model_dir
):
    def run() -> None:
        _run_to_synthesis(monkeypatch, tmp_path, tiny_model_dir, name, *argv)

    assert f"argument {option}:" in _refusal(capsys, run)


@pytest.mark.parametrize("value", ["-1", "1701"])
def test_benches_refuse_a_replay_into_the_dev_split_alike(value, capsys):
    """The three benches that replay general rows take them from the top of general/train.txt
    and keep its last sentences for the dev split: one limit, refused in the same words."""
    refusals = []
    for name in ("bench_accuracy", "bench_learn", "bench_learn_whisper"):
        err = _refusal(capsys, functools.partial(_bench(name).parse_args, ["--replay", value]))
        refusals.append(err.splitlines()[-1].partition("error: ")[2])
    assert refusals[0].startswith(f"argument --replay: {value}: give 0 to 1700")
    assert refusals == [refusals[0]] * 3


@pytest.mark.parametrize("name", ["bench_accuracy", "bench_lm"])
def test_accuracy_benches_do_not_import_bench_learn(name):
    """bench_learn builds on bench_accuracy: an import back (lazy, inside a function) made a
    circle of modules."""
    tree = ast.parse((BENCH / f"{name}.py").read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "bench_learn" not in imported


# ---- bench_learn: what its figures say, the full-size cost, cache per voicing --------------------


def test_learn_oov_share_needs_a_readable_vocabulary(tmp_path):
    """A model whose vocab.json cannot be read has no out-of-vocabulary share (it read as an
    empty vocabulary: "100.0 % of the test characters are outside")."""
    bl = _bench("bench_learn")
    text = tmp_path / "eval.txt"
    text.write_text("一二\n", encoding="utf-8")
    tuning = bl.write_manifest([(str(tmp_path / "a.wav"), "一")], tmp_path / "tuning")
    assert bl.oov_shares(tmp_path / "no-model", text, tuning) is None
    assert "no out-of-vocabulary share" in bl.oov_text(tmp_path / "no-model", "dev", text, tuning)


def test_learn_step_cost_leaves_out_the_warm_up_step():
    bl = _bench("bench_learn")
    assert bl.steady_step_seconds([9.0, 2.0, 4.0, 3.0]) == 3.0
    assert bl.steady_step_seconds([0.5]) is None  # one step: warm-up only, no figure


class _OneStepChild:
    """full_size_cost's child process, stubbed: it sends one step's seconds and the trainable
    and total parameters, as a job that ran a single step would."""

    exitcode = 0

    def __init__(self, target, args) -> None:
        self.queue = args[-1]

    def start(self) -> None:
        self.queue.put(([0.5], 10, 100))

    def join(self) -> None:
        pass


class _InlineSpawn:
    """multiprocessing's spawn context, its child run in this process."""

    def Queue(self):  # multiprocessing's name
        import queue

        return queue.Queue()

    Process = _OneStepChild


def test_learn_full_size_cost_of_one_step_says_so(tmp_path, monkeypatch, capsys):
    import multiprocessing

    bl = _bench("bench_learn")
    monkeypatch.setattr(multiprocessing, "get_context", lambda kind: _InlineSpawn())
    domain = bl.write_manifest([(str(tmp_path / "a.wav"), "一")], tmp_path / "domain")
    bl.full_size_cost(tmp_path, domain, 1)
    assert "ran 1 step(s): no figure" in capsys.readouterr().out


def _stub_learn_run(monkeypatch, tmp_path) -> None:
    """bench_learn's main with every heavy step stubbed: manifests of one row, CERs of 20 %
    before and 10 % after (greedy 30 % / 15 %), a tuning job that takes a minute."""
    import types

    import engine.tune.evaluate

    bl = _bench("bench_learn")
    manifest = bl.write_manifest([(str(tmp_path / "a.wav"), "一")], tmp_path / "work" / "rows")
    monkeypatch.setattr(bl, "corrections", lambda *args: (manifest, 600.0))
    monkeypatch.setattr(bl, "synth_text", lambda *args, **kwargs: manifest)
    monkeypatch.setattr(bl, "general_dev", lambda work: manifest)
    monkeypatch.setattr(bl, "tuning_data", lambda *args: manifest)
    monkeypatch.setattr(bl, "tune", lambda config: (tmp_path / "tuned", 10, 60.0))

    def evaluate(model, data, options):
        after = model == tmp_path / "tuned"
        cer, greedy = (0.1, 0.15) if after else (0.2, 0.3)
        return types.SimpleNamespace(
            cer=types.SimpleNamespace(cer=cer), greedy_cer=types.SimpleNamespace(cer=greedy)
        )

    monkeypatch.setattr(engine.tune.evaluate, "evaluate", evaluate)


def test_learn_headline_is_last_even_when_the_full_size_section_fails(
    tmp_path, monkeypatch, capsys
):
    _stub_learn_run(monkeypatch, tmp_path)

    def fails(*args):
        raise RuntimeError("full-size section failed")

    monkeypatch.setattr(_bench("bench_learn"), "full_size_cost", fails)
    monkeypatch.setattr(sys, "argv", ["bench_learn.py", "--work", str(tmp_path / "work")])
    with pytest.raises(RuntimeError):
        _bench("bench_learn").main()
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == "relative CER cut: 50 %  (tuning 1.0 min, general -10.0 pt)"


def test_learn_dev_general_figure_says_the_base_model_trained_on_it(tmp_path, monkeypatch, capsys):
    """The dev split's general sentences are the last of general/train.txt, which the demo
    model and its LM trained on: said with the figure, beside its greedy CER."""
    _stub_learn_run(monkeypatch, tmp_path)
    argv = ["--work", str(tmp_path / "work"), "--split", "dev", "--skip-full"]
    monkeypatch.setattr(sys, "argv", ["bench_learn.py", *argv])
    _bench("bench_learn").main()
    lines = capsys.readouterr().out.splitlines()
    assert "general/train.txt (1; sentences the base model and its LM trained on)" in lines[0]
    (general,) = [line for line in lines if line.startswith("general CER")]
    assert "sentences the base model and its LM trained on" in general
    assert "general 30.00% -> 15.00%" in lines[-2]  # the greedy line
    assert lines[-1].startswith("relative CER cut: 50 %")


def test_learn_job_of_no_step_is_an_error_not_a_tuned_figure(tmp_path, monkeypatch, capsys):
    """A --budget whose set-up takes all of it ends the job after 0 steps with the base model
    saved as the tuned one: the bench said "0 steps" and printed a cut as if it had trained."""
    import types

    import engine.tune.evaluate
    import engine.tune.loop
    from engine.tune.events import JobFinished

    bl = _bench("bench_learn")
    tune = bl.tune
    _stub_learn_run(monkeypatch, tmp_path)
    monkeypatch.setattr(bl, "tune", tune)
    result = types.SimpleNamespace(model_dir=tmp_path / "tuned", steps=0)
    monkeypatch.setattr(engine.tune.loop, "run_job", lambda config: iter([JobFinished(result)]))
    scored = []
    evaluate = engine.tune.evaluate.evaluate

    def recording(model, *args):
        scored.append(model)
        return evaluate(model, *args)

    monkeypatch.setattr(engine.tune.evaluate, "evaluate", recording)
    argv = ["--work", str(tmp_path / "work"), "--budget", "0.5", "--skip-full"]
    monkeypatch.setattr(sys, "argv", ["bench_learn.py", *argv])
    with pytest.raises(SystemExit) as stop:
        bl.main()
    message = str(stop.value.code)
    assert message.startswith("tuning job ran no step: its set-up took all of its 0.2 min limit")
    assert message.endswith("give a larger --budget")
    assert tmp_path / "tuned" not in scored
    assert "relative CER cut" not in capsys.readouterr().out


def test_replay_takes_no_negative_or_missing_rows(tmp_path):
    """A negative count sliced general rows off the end (the dev split's) into the tuning set."""
    ba = _bench("bench_accuracy")
    domain = ba.write_manifest([(str(tmp_path / "d.wav"), "一")], tmp_path / "domain")
    rows = [(str(tmp_path / f"{k}.wav"), "二") for k in range(5)]
    general = ba.write_manifest(rows, tmp_path / "general")
    for n in (-2, 6):
        with pytest.raises(ValueError, match=f"replay of {n} rows"):
            ba.with_replay(domain, general, n, tmp_path / "mix")
    mixed = ba.with_replay(domain, general, 2, tmp_path / "mix")
    assert [text for _, text in ba.manifest_rows(mixed)] == ["一", "二", "二"]


def test_synth_cache_is_per_voicing(tmp_path, monkeypatch):
    """Other voice options (or copies) are voiced into another folder, not read from the one
    of the defaults, whose name stays as before."""
    ba = _bench("bench_accuracy")
    monkeypatch.setattr(ba, "synth_once", lambda text, out, *args, **kwargs: out)
    text = tmp_path / "medicine" / "test.txt"
    text.parent.mkdir()
    text.write_text("一二\n", encoding="utf-8")
    plain = ba.synth_text(text, tmp_path, 1, 41)
    assert plain.name.startswith("medicine-test-") and plain.name.endswith("-s41")
    one = dict(_bench("bench_learn").ONE_VOICE)
    voiced = ba.synth_text(text, tmp_path, 1, 41, **one)
    shuffled = ba.synth_text(text, tmp_path, 1, 41, **dict(reversed(list(one.items()))))
    faster = ba.synth_text(text, tmp_path, 1, 41, **{**one, "speed_range": (170, 190)})
    copies = ba.synth_text(text, tmp_path, 3, 41)
    assert len({plain, voiced, faster, copies}) == 4
    assert shuffled == voiced


# ---- bench_accuracy, bench_lm: what each figure is measured on, verdicts -------------------------


def _report(cer: float, auroc: float | None = 0.9):
    """The fields of an EvalReport that bench_accuracy reads: CER `cer` (1.5 times that greedy),
    an ECE of 0.01 as shown."""
    import types

    measure = types.SimpleNamespace(measure="max_prob:1:mean+platt", auroc=auroc, ece=0.01)
    return types.SimpleNamespace(
        cer=types.SimpleNamespace(cer=cer), greedy_cer=types.SimpleNamespace(cer=cer * 1.5),
        rows=(), decoder="beam search", confidence_measure=measure.measure, auroc=auroc,
        ece=0.01, rtf=0.1, wrong_characters=1, characters=100, measures=(measure,),
    )  # fmt: skip


def _stub_voicing(monkeypatch, *names: str) -> list[tuple[Path, Path]]:
    """Synthesis stubbed in bench_accuracy (and the modules `names` that imported synth_once):
    each folder gets a manifest of three rows at once. Returns the (text, folder) voiced."""
    ba = _bench("bench_accuracy")
    voiced: list[tuple[Path, Path]] = []

    def synth_once(text, out, *args, **kwargs):
        voiced.append((Path(text), Path(out)))
        return ba.write_manifest([(str(out / f"{k}.wav"), "一") for k in range(3)], out)

    for name in ("bench_accuracy", *names):
        monkeypatch.setattr(_bench(name), "synth_once", synth_once, raising=False)
    return voiced


def _run_accuracy(monkeypatch, tmp_path, model: Path, *argv, auroc=0.9, calibrated_ece=0.01):
    """bench_accuracy's main with every heavy step stubbed, each figure on its target unless
    told: CER 20 % everyday, 5 % general, medicine 40 % before and 5 % after the job, a
    cross-fitted everyday ECE of `calibrated_ece`, AUROCs of `auroc`. Returns (exit code,
    the (text, folder) pairs voiced)."""
    import types

    import engine.tune.evaluate

    ba = _bench("bench_accuracy")
    voiced = _stub_voicing(monkeypatch)
    tuned = tmp_path / "tuned"

    def evaluate(model, manifest, options=None):
        name = Path(manifest).parent.name
        if "everyday" in name:
            return _report(0.2, auroc)
        return _report(0.4 if "medicine" in name and model != tuned else 0.05, auroc)

    fit = types.SimpleNamespace(raw_ece=0.2, held_out_ece=calibrated_ece)
    monkeypatch.setattr(engine.tune.evaluate, "evaluate", evaluate)
    monkeypatch.setattr(engine.tune.evaluate, "fit_calibration", lambda *args, **kwargs: fit)
    monkeypatch.setattr(ba, "lora_job", lambda *args: tuned)
    monkeypatch.setattr(ba, "domain_text_cuts", lambda *args: (0.3, 0.6))
    work = ["--work", str(tmp_path / "work"), "--replay", "2"]
    monkeypatch.setattr(sys, "argv", ["bench_accuracy.py", "--model", str(model), *work, *argv])
    return ba.main(), voiced


def test_accuracy_figures_on_target_meet_all_targets(tmp_path, monkeypatch, capsys, tiny_model_dir):
    code, _ = _run_accuracy(monkeypatch, tmp_path, tiny_model_dir)
    assert capsys.readouterr().out.splitlines()[-1] == "all targets met"
    assert code == 0


def test_accuracy_verdict_holds_the_everyday_ece_target(
    tmp_path, monkeypatch, capsys, tiny_model_dir
):
    """The docstring's everyday ECE target (<= 0.05, calibrated) is part of the verdict."""
    code, _ = _run_accuracy(monkeypatch, tmp_path, tiny_model_dir, calibrated_ece=0.3)
    last = capsys.readouterr().out.splitlines()[-1]
    assert last != "all targets met"
    assert "ECE" in last
    assert code == 1


def test_accuracy_auroc_of_none_reads_na(tmp_path, monkeypatch, capsys, tiny_model_dir):
    """No wrong (or no right) character has no AUROC: printed n/a, a missed target, not a
    TypeError from its format."""
    code, _ = _run_accuracy(monkeypatch, tmp_path, tiny_model_dir, auroc=None)
    out = capsys.readouterr().out
    assert out.count("AUROC n/a") == 3  # everyday, general, the measures compared
    assert code == 1


def test_accuracy_dev_general_figure_says_the_model_trained_on_it(
    tmp_path, monkeypatch, capsys, tiny_model_dir
):
    """--split dev's general sentences are the last of general/train.txt, which the demo model
    and its LM trained on: said with the figure, its greedy CER beside (as bench_learn)."""
    _run_accuracy(monkeypatch, tmp_path, tiny_model_dir, "--split", "dev")
    lines = capsys.readouterr().out.splitlines()
    trained_on = _bench("bench_accuracy").TRAINED_ON
    (general,) = [line for line in lines if "CER 5.00% (target <= 10 %)" in line]
    assert trained_on in general
    assert "greedy 7.50%" in general
    assert not [line for line in lines if "held-out general" in line]


def _voiced_by_content(voiced: list[tuple[Path, Path]]) -> None:
    import hashlib

    assert voiced
    for text, folder in voiced:
        assert hashlib.sha256(text.read_bytes()).hexdigest()[:8] in folder.name, folder


def test_accuracy_audio_folders_are_named_by_their_text(
    tmp_path, monkeypatch, capsys, tiny_model_dir
):
    """An edited sentence file is voiced afresh: general-train was a fixed folder name."""
    _, voiced = _run_accuracy(monkeypatch, tmp_path, tiny_model_dir)
    assert any(text.name == "train.txt" and text.parent.name == "general" for text, _ in voiced)
    _voiced_by_content(voiced)


def test_accuracy_everyday_raw_ece_is_the_raw_measure(tmp_path, monkeypatch, capsys):
    """The raw ECE is the raw primary measure's, not the calibrated column's again."""
    import engine.tune.evaluate as ev

    ba = _bench("bench_accuracy")
    options = ev.EvalOptions()
    raw = options.measures[0].name
    confidences = ((0.5, 0.5), (1.0, 1.0))  # calibrated (ECE 0: half right), raw (ECE 0.5)
    row = ev.EvalRow(
        "a.wav", "一二", "一三", 1.0, 0.1, (True, False), confidences, (f"{raw}+platt", raw)
    )
    rows = [row] * 8
    _stub_voicing(monkeypatch)
    monkeypatch.setattr(ev, "evaluate", lambda *args: ev.summarize(rows, options))
    ba.everyday(tmp_path / "model", tmp_path / "work", "test", options)
    out = capsys.readouterr().out
    assert "ECE 0.000 as shown, 0.500 raw" in out


def test_lora_job_starts_afresh(tmp_path, monkeypatch):
    """A second run with the same settings found the first one's checkpoints in its folder
    ("continue it with --resume") after the whole base measurement."""
    import engine.tune.loop

    ba = _bench("bench_accuracy")
    out = tmp_path / "lora-medicine-400-0.002"
    (out / "checkpoints").mkdir(parents=True)
    seen = []

    def run_job(config):
        seen.append(any(Path(config.output_dir).iterdir()) if out.exists() else False)
        return iter(())

    monkeypatch.setattr(engine.tune.loop, "run_job", run_job)
    with pytest.raises(SystemExit):  # no JobFinished from the stub
        ba.lora_job(tmp_path / "model", tmp_path / "data", out, 400, 2e-3)
    assert seen == [False]


class _NoLmScorer:
    """bench_lm's Scorer on a model without lm/: its default decoding is greedy ("一" for
    "一二"); the domain text's beam search gets it right."""

    has_lm = False

    def __init__(self, model: Path) -> None:
        import types

        self.t = types.SimpleNamespace(model=types.SimpleNamespace(vocab=["一", "二"]))

    def outputs(self, manifest: Path):
        return ["一二"], [None], 1.0, 0.1

    def decode(self, manifest: Path, homophones=None, **options):
        return (["一二"] if options.get("domain_text") else ["一"]), 0.01


def _run_lm(monkeypatch, tmp_path, scorer, *argv: str) -> list[tuple[Path, Path]]:
    """bench_lm's main on the tiny model with `scorer` for its Scorer, synthesis and the LoRA
    job stubbed. Returns the (text, folder) pairs voiced."""
    bl = _bench("bench_lm")
    voiced = _stub_voicing(monkeypatch, "bench_lm")
    monkeypatch.setattr(bl, "Scorer", scorer)
    monkeypatch.setattr(bl, "everyday_lines", lambda: [])
    monkeypatch.setattr(bl, "lora_job", lambda *args: tmp_path / "tuned")
    monkeypatch.setattr(sys, "argv", ["bench_lm.py", "--work", str(tmp_path / "work"), *argv])
    bl.main()
    return voiced


def test_lm_without_a_language_model_claims_no_lm_figures(
    tmp_path, monkeypatch, capsys, tiny_model_dir
):
    """On a model without lm/ the default decoding is greedy: not named an LM, and no
    domain-text cut against a general LM is claimed for it."""
    _run_lm(monkeypatch, tmp_path, _NoLmScorer, "--model", str(tiny_model_dir))
    lines = capsys.readouterr().out.splitlines()
    runs = [line for line in lines if "term errors" in line]
    assert len(runs) == 2 * 8  # of each set, 7 decodings and the cuts
    assert not [line for line in runs if "general LM" in line]
    assert not [line for line in lines if "model's LM" in line]
    assert len([line for line in runs if "no LM (greedy)" in line]) == 4
    assert "domain-text cut" not in lines[-1]
    assert "no LM (greedy)" in lines[-1]


def test_lm_audio_folders_are_named_by_their_text(tmp_path, monkeypatch, capsys, tiny_model_dir):
    """general-heldout, medicine-heldout and medicine-train were fixed folder names: an edited
    sentence file read the old audio."""
    voiced = _run_lm(monkeypatch, tmp_path, _NoLmScorer, "--model", str(tiny_model_dir), "--tuned")
    assert len(voiced) == 4
    _voiced_by_content(voiced)


def test_lm_scores_normalized_hypotheses(tiny_model_dir, tiny_with_lm, monkeypatch):
    """Hypotheses are normalized as the references are (evaluate's way): a Traditional form
    or a punctuation mark is no error."""
    bl = _bench("bench_lm")
    scorer = bl.Scorer(tiny_model_dir)
    chars = [Char(ch, 0.1 * k, 0.1 * k + 0.1, 0.9) for k, ch in enumerate("一二線，")]
    monkeypatch.setattr(scorer.t, "chars", lambda lp, beam=None: chars)
    manifest = Path("clips.tsv")
    scorer.cache[manifest] = (["一二线"], [None], 1.0, 0.1)
    assert scorer.decode(manifest, decoder="greedy")[0] == ["一二线"]
    assert not scorer.has_lm
    assert bl.Scorer(tiny_with_lm).has_lm


def test_lm_nested_terms_count_once():
    """量体温 holds 体温: an occurrence of the longer term is one, not two."""
    bl = _bench("bench_lm")
    terms = ["体温", "量体温", "处方"]
    assert bl.term_errors(["量体温", "量体温和体温"], ["体温", "量体温"], terms) == (3, 2)
    assert bl.term_errors(["开处方"], ["开处方"], terms) == (1, 0)


def test_accuracy_docstrings_count_their_sentences_and_terms(tmp_path):
    bl, ba = _bench("bench_lm"), _bench("bench_accuracy")
    terms = bl.hotword_file(tmp_path / "hot.txt").read_text(encoding="utf-8").split()
    assert f"the {len(terms)} medical terms" in " ".join(bl.__doc__.split())
    for split in ("dev", "test"):
        text = ba.CORPUS / "medicine" / f"independent-{split}.txt"
        count = len(text.read_text(encoding="utf-8").splitlines())
        assert f"{count} of `{text.name}`" in " ".join(ba.__doc__.split())
