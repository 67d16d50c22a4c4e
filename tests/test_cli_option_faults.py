"""`tingxie-cli` faults a review of its options found: values taken that made broken output
(synth --snr nan), a hotword's number taken for its weight, typos told only after the model
loaded (or blamed on the text encoding), a quoted ~ left unexpanded, a file taken for a missing
folder, and option errors that named neither the option nor the value."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import test_train

import engine.cli.transcribe
from engine.cli import build_parser, main
from engine.cli.transcribe import _expand
from engine.lm import Hotword, LmError, read_hotwords
from engine.model import DEMO_MODEL_DIR
from engine.tune import jobs, loop
from engine.tune.data import DatasetError, from_manifest
from engine.tune.events import JobFailed
from engine.tune.loop import Job, run_job
from engine.tune.synth import SynthOptions

# test_train's tiny base model and tone corpus (bound by name, as pytest finds fixtures)
corpus = test_train.corpus


def _wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(16_000, np.float32), 16_000)
    return path


# ---- 1: synth --snr nan / inf ------------------------------------------------------------------


@pytest.mark.parametrize("snr", ["nan", "-inf", "clean,inf"])
def test_synth_refuses_an_snr_that_is_not_finite(snr, tmp_path, capsys):
    """Before: nan rendered clips whose every sample was -1.0 under a clean label (exit 0), and
    -inf crashed a worker with ZeroDivisionError."""
    text = tmp_path / "s.txt"
    text.write_text("你好\n", encoding="utf-8")
    assert main(["synth", str(text), str(tmp_path / "out"), f"--snr={snr}", "--workers", "1"]) == 2
    assert f"--snr {snr!r}: give finite numbers" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="snr_choices"):
        SynthOptions(snr_choices=(None, math.nan))


# ---- 2: hotword weights only after a tab ---------------------------------------------------------


def test_a_hotword_ending_in_a_number_keeps_it_and_only_a_tab_gives_a_weight(tmp_path):
    """Before: "COVID 19" became covid with weight 19, and 第 2 made 第 a hotword."""
    path = tmp_path / "terms.txt"
    path.write_text("COVID 19\nB超2\n阿司匹林\t100\n", encoding="utf-8")
    assert read_hotwords(path) == (Hotword("covid19"), Hotword("b超2"), Hotword("阿司匹林", 100.0))


@pytest.mark.parametrize("line", ["急诊科 4", "第 2", "阿莫西林 0.5", "血压 -3"])
def test_a_chinese_term_a_space_and_a_number_is_refused_as_the_weight_it_meant(tmp_path, line):
    """The app's own tip showed "阿莫西林 4" when the weight moved to after a tab: read as
    the term 急诊科4, no Chinese model writes it and it was left out with a log line only."""
    path = tmp_path / "terms.txt"
    path.write_text(f"血压\n{line}\n", encoding="utf-8")
    with pytest.raises(LmError) as error:
        read_hotwords(path)
    assert error.value.code == "lm.hotword_space_weight"
    assert str(error.value).startswith(f"{path} line 2: ") and "tab" in str(error.value)


def test_every_hotword_error_drops_only_the_hotwords():
    """lm.hotword_too_long was taken for a failure of the decoder and the app fell back to
    greedy decoding, dropping the domain text and the model's LM with the list."""
    from app.worker import _failed_part

    at = {"path": "h.txt", "line": 1, "text": "x"}
    for code, params in (
        ("lm.hotword_too_long", {**at, "length": 99, "limit": 32}),
        ("lm.hotword_space_weight", at),
        ("lm.hotwords_empty", {"path": "h.txt"}),
    ):
        assert _failed_part(LmError(code, **params)) == "hotwords", code


def test_a_weight_after_a_tab_that_is_no_number_names_the_line(tmp_path):
    """Before: 听写\\tabc was taken as the term 听写abc, refused later as unwritable."""
    path = tmp_path / "terms.txt"
    path.write_text("血压\n听写\tabc\n", encoding="utf-8")
    with pytest.raises(LmError) as error:
        read_hotwords(path)
    assert error.value.code == "lm.hotword_weight"
    assert str(error.value).startswith(f"{path} line 2: ") and "after the tab" in str(error.value)


# ---- 3: export --check on a missing file or a folder -------------------------------------------


def test_a_check_manifest_that_is_missing_or_a_folder_is_called_so(tmp_path, capsys):
    """Before: both were "cannot read the manifest as UTF-8 text ([Errno 2] …)"."""
    missing, folder = tmp_path / "nomani.tsv", tmp_path / "d"
    folder.mkdir()
    said = {
        missing: ("dataset.manifest_missing", f"manifest {missing} does not exist"),
        folder: ("dataset.manifest_is_folder", f"{folder} is a folder, not a manifest"),
    }
    for path, (code, message) in said.items():
        with pytest.raises(DatasetError) as error:
            from_manifest(path)
        assert error.value.code == code
        argv = ["export", str(DEMO_MODEL_DIR), str(tmp_path / "x"), "--format", "onnx"]
        assert main([*argv, "--check", str(path)]) == 1
        assert message in capsys.readouterr().err


# ---- 4: --hotwords / --domain-text typos before the model loads --------------------------------


@pytest.mark.parametrize(
    ("option", "said"),
    [("--hotwords", "cannot read the hotwords"), ("--domain-text", "cannot read the domain text")],
)
@pytest.mark.parametrize("command", ["transcribe", "watch"])
def test_a_missing_decoding_file_is_told_before_the_model_loads(
    command, option, said, tmp_path, monkeypatch, capsys
):
    """Before: the model loaded first (a minute for the default one), then the typo was told."""
    loaded = []
    monkeypatch.setattr(
        engine.cli.transcribe, "load_model", lambda *a, **k: loaded.append(a) or 1 / 0
    )
    wav = _wav(tmp_path / "in" / "a.wav")
    target = [str(wav)] if command == "transcribe" else [str(wav.parent), "--once"]
    argv = [command, *target, "--model", str(DEMO_MODEL_DIR), "--no-punctuation"]
    assert main([*argv, option, str(tmp_path / "typo.txt")]) == 2
    assert f"{tmp_path / 'typo.txt'}: {said}" in capsys.readouterr().err
    assert not loaded


# ---- 5: tune with a data path that does not exist ----------------------------------------------


def test_a_missing_data_path_is_told_before_the_folder_is_claimed_or_the_model_loads(
    corpus, tmp_path, monkeypatch
):
    """Before: the model loaded, then "data … does not exist", leaving .tingxie-job and
    .tingxie-lock in a new output_dir."""
    loaded = []
    monkeypatch.setattr(Job, "_load_base", lambda self: loaded.append(self) or 1 / 0)
    out = tmp_path / "out"
    config = test_train._config(corpus, out, data=str(tmp_path / "typo.tsv"))
    events = list(run_job(config))
    assert len(events) == 1 and events[0].code == "dataset.source_missing", events
    assert not loaded and not out.exists()


def test_a_job_that_fails_before_it_starts_leaves_its_folder_as_it_found_it(corpus, tmp_path):
    """A new or empty output_dir gets no job marks from a job that never started; a folder of
    an earlier job keeps everything in it."""
    manifest = tmp_path / "bad.tsv"
    manifest.write_text("path\ttext\ngone.wav\t你好\n", encoding="utf-8")
    new, empty, earlier = tmp_path / "new", tmp_path / "empty", tmp_path / "earlier"
    empty.mkdir()
    (earlier / "model").mkdir(parents=True)
    (earlier / ".tingxie-job").write_text("an earlier job\n", encoding="utf-8")
    for out in (new, empty, earlier):
        events = list(run_job(test_train._config(corpus, out, data=str(manifest))))
        assert isinstance(events[-1], JobFailed) and events[-1].code == "dataset.none_usable"
    assert not new.exists() and list(empty.iterdir()) == []
    kept = sorted(p.name for p in earlier.iterdir())
    assert {".tingxie-job", "model"} <= set(kept)
    assert (earlier / ".tingxie-job").read_text(encoding="utf-8") == "an earlier job\n"


def test_a_job_that_fails_before_it_starts_removes_its_marks_while_it_holds_the_lock(
    corpus, tmp_path, monkeypatch
):
    """Before: the lock was let go first, then the lock file deleted: a job that started in the
    folder in between took that lock and then lost its lock file (and mark) under it."""
    manifest = tmp_path / "bad.tsv"
    manifest.write_text("path\ttext\ngone.wav\t你好\n", encoding="utf-8")
    out, order = tmp_path / "out", []
    real_unlink, real_claim = Path.unlink, jobs.claim_output_dir

    class Held:  # the claim's lock file, its close seen
        def __init__(self, held) -> None:
            self.held = held

        def close(self) -> None:
            order.append("close")
            self.held.close()

    def claim(*args, **kwargs):
        return Held(real_claim(*args, **kwargs))

    def unlink(self, *args, **kwargs):
        if self.parent == out:
            order.append(self.name)
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(loop, "claim_output_dir", claim)
    monkeypatch.setattr(Path, "unlink", unlink)
    events = list(run_job(test_train._config(corpus, out, data=str(manifest))))
    assert isinstance(events[-1], JobFailed) and not out.exists()
    closed = order.index("close")
    assert {".tingxie-job", ".tingxie-lock"} <= set(order[:closed]), order


# ---- 6: a quoted ~ -----------------------------------------------------------------------------


def test_a_quoted_home_folder_is_expanded_before_it_is_told_apart_from_a_file(
    tmp_path, monkeypatch
):
    """Before: '~/d' was refused as "a folder, not an audio file"; --out '~/o' made a folder
    named ~ in the working folder."""
    monkeypatch.setenv("HOME", str(tmp_path))
    wav = _wav(tmp_path / "d" / "a.wav")
    inputs, missing = _expand(["~/d"], recursive=False)
    assert [path for path, _ in inputs] == [wav] and missing == []
    args = build_parser().parse_args(["transcribe", "x.wav", "--out", "~/o"])
    assert args.out == tmp_path / "o"
    assert build_parser().parse_args(["watch", "~/d"]).folder == tmp_path / "d"


# ---- 7: watch given a file -----------------------------------------------------------------------


def test_watch_given_a_file_says_it_is_a_file(tmp_path, capsys):
    """Before: "tone.wav: no such folder" for a file that exists."""
    wav = _wav(tmp_path / "tone.wav")
    assert main(["watch", str(wav), "--once", "--model", str(DEMO_MODEL_DIR)]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and str(tmp_path) in err and "no such" not in err


# ---- 8: option errors naming the option and the value ----------------------------------------


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["corrections", "x", "--threshold", "2"], "argument --threshold: '2' is not"),
        (["corrections", "x", "--threshold", "nan"], "argument --threshold: 'nan' is not"),
        (["synth", "s.txt", "out", "--seed", "-1"], "argument --seed: '-1' is not"),
    ],
)
def test_an_option_out_of_range_is_a_usage_error_naming_it(argv, said, capsys):
    """Before: corrections said "threshold=2.0: …" (status 1); synth said only "expected
    non-negative integer" (numpy's words)."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert said in capsys.readouterr().err
