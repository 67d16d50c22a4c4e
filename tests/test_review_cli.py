"""`tingxie-cli library` and `tingxie-cli corrections`: the store and the tuning hand-off
from the command line."""

from __future__ import annotations

import argparse
import importlib
import shlex
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.audio import write_wav
from engine.library.review import EditOp
from engine.library.store import Store
from engine.results import Alternative, Char, Segment
from engine.tune.config import TuneConfig


def run_cli(argv: list[str]) -> int:
    """Run one `tingxie-cli` subcommand through its own parser, as `engine.cli.main` does, so a
    half-registered command of another engineer cannot break this test."""
    from engine.cli import COMMANDS  # registered there, run here alone

    assert argv[0] in COMMANDS
    parser = argparse.ArgumentParser()
    importlib.import_module(f"engine.cli.{argv[0]}").add_parser(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.run(args)


def make_segments() -> list[Segment]:
    alts = (Alternative("甜", 0.3),)
    a = tuple(Char(t, 0.2 * i, 0.2 * i + 0.2, 0.3 if i == 2 else 0.9, alts)
              for i, t in enumerate("今天天气好"))  # fmt: skip
    b = tuple(Char(t, 2.0 + 0.2 * i, 2.2 + 0.2 * i, 0.3 if i == 2 else 0.9)
              for i, t in enumerate("我们去公园"))  # fmt: skip
    return [Segment(0, 0.0, 1.0, a), Segment(1, 2.0, 3.0, b)]


@pytest.fixture
def store_with_edits(tmp_path: Path):
    rec = tmp_path / "rec.wav"
    write_wav(rec, (0.3 * np.sin(np.arange(4 * 16_000) / 5)).astype(np.float32))
    store = Store(tmp_path / "db" / "tingxie.db")
    tid = store.add_transcript(make_segments(), audio=rec, title="meeting")
    store.add_edit(tid, EditOp(0, 2, 3, "甜", "fix"))
    store.add_edit(tid, EditOp(1, 2, 3, "去", "accept"))
    yield store, tid
    store.close()


def test_cli_library_lists_searches_and_exports_edits(tmp_path: Path, capsys):
    path = tmp_path / "cli.db"
    with Store(path) as s:
        tid = s.add_transcript(make_segments(), title="meeting")
        s.add_edit(tid, EditOp(1, 3, 5, "北京", "fix"))
    assert run_cli(["library", "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert "meeting" in out and "我们去北京" in out and "1 edits" in out
    assert run_cli(["library", "上海", "--db", str(path)]) == 0
    assert capsys.readouterr().out == ""
    target = tmp_path / "out.txt"
    args = ["library", "--db", str(path), "--export", str(tid), str(target)]
    assert run_cli([*args, "--script", "traditional"]) == 0
    assert "我們去北京" in target.read_text(encoding="utf-8")
    assert run_cli(["library", "--db", str(path), "--export", "42", str(target)]) == 1
    assert "transcript 42 is not in the store" in capsys.readouterr().err


def test_cli_library_shows_control_characters_of_a_title_as_escapes(tmp_path: Path, capsys):
    """Before: a newline in a title printed a fake row, ESC sequences reached the terminal
    (a colour here; a title, a clipboard write elsewhere), U+202E showed the rest backwards."""
    path = tmp_path / "cli.db"
    fake = "minutes\n   99  2030-01-01 00:00     0 edits  FAKE\x1b[31m\u202eevil\u2066.wav\x9b"
    with Store(path) as s:
        s.add_transcript(make_segments(), title=fake)
    assert run_cli(["library", "--db", str(path)]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert "minutes\\n   99  2030-01-01 00:00     0 edits  FAKE\\x1b[31m\\u202eevil" in line
    assert line.endswith("\\u2066.wav\\x9b  今天天气好我们去公园")
    assert run_cli(["library", "\x1b]0;pwned\x07", "--db", str(path)]) == 0
    assert capsys.readouterr().err == "no transcript contains “\\x1b]0;pwned\\x07”\n"


def test_cli_library_export_names_the_speakers(tmp_path: Path):
    path = tmp_path / "cli.db"
    with Store(path) as s:
        spoken = [replace(seg, speaker=seg.id) for seg in make_segments()]
        tid = s.add_transcript(spoken, title="visit")
        s.rename_speaker(tid, 0, "张医生")
    target = tmp_path / "out.txt"
    assert run_cli(["library", "--db", str(path), "--export", str(tid), str(target)]) == 0
    lines = target.read_text(encoding="utf-8").splitlines()
    assert [line for line in lines if line] == ["张医生：今天天气好", "说话人 2：我们去公园"]


def test_cli_hand_off(store_with_edits, tmp_path, capsys):
    store, _ = store_with_edits
    model = tmp_path / "model"
    model.mkdir()
    (model / "vocab.json").write_text('{"<pad>": 0, "今": 1, "天": 2}', encoding="utf-8")
    code = run_cli(["corrections", "cli-set", "--db", str(store.path), "--model", str(model)])
    out = capsys.readouterr().out
    assert code == 0
    assert "2 clips" in out and "1 corrections" in out and "1 accepted" in out
    config = store.path.parent / "corrections" / "cli-set" / "tune.yaml"
    assert f"tingxie-cli tune {config}" in out
    assert "甜" in out.split("new to the model:")[1].splitlines()[0]
    assert TuneConfig.load(config).model == str(model.resolve())
    assert run_cli(["corrections", "x", "--db", str(store.path), "-t", "99"]) == 1
    assert "transcript 99 is not in the store" in capsys.readouterr().err


def test_cli_hand_off_quotes_a_folder_with_a_space(store_with_edits, tmp_path, capsys):
    """Before: `tingxie-cli tune corr/My Sets/clinic/tune.yaml`, which a shell splits in two."""
    store, _ = store_with_edits
    model = tmp_path / "model"
    model.mkdir()
    (model / "vocab.json").write_text('{"<pad>": 0, "今": 1, "天": 2}', encoding="utf-8")
    sets = tmp_path / "My Sets"
    args = ["corrections", "clinic", "--db", str(store.path), "--model", str(model)]
    assert run_cli([*args, "--folder", str(sets)]) == 0
    command = capsys.readouterr().out.split("tune with:\n")[1].strip()
    (config,) = sets.rglob("tune.yaml")
    assert shlex.split(command) == ["tingxie-cli", "tune", str(config)]


def test_cli_corrections_asks_before_replacing_a_set_of_that_name(
    store_with_edits, tmp_path, capsys
):
    """The app asks before a name in use replaces a training set; the command line rebuilt it
    from whatever transcripts it was given, unasked. Now it refuses, naming the set and
    --replace, and leaves the set as it was."""
    store, _ = store_with_edits
    model = tmp_path / "model"
    model.mkdir()
    (model / "vocab.json").write_text('{"<pad>": 0, "今": 1, "天": 2}', encoding="utf-8")
    args = ["corrections", "mine", "--db", str(store.path), "--model", str(model)]
    assert run_cli(args) == 0
    manifest = store.path.parent / "corrections" / "mine" / "manifest.tsv"
    before = manifest.read_bytes()
    capsys.readouterr()
    assert run_cli([*args, "--scope", "span"]) == 1
    err = capsys.readouterr().err
    assert "a training set named 'mine' exists" in err and "--replace" in err
    assert manifest.read_bytes() == before
    (manifest.parent / "stale.txt").write_text("from the first build", encoding="utf-8")
    assert run_cli([*args, "--replace"]) == 0
    assert manifest.read_bytes() == before and not (manifest.parent / "stale.txt").exists()


def test_cli_corrections_that_cannot_be_recorded_say_the_set_was_written(
    store_with_edits, tmp_path, capsys, monkeypatch
):
    """The library busy past its timeout after the folder was written: the error read as if
    nothing was made, and the retry was refused (a set of that name exists). Now it names
    the folder written and the command that records it, which does."""
    from engine.library.store import StoreError

    store, tid = store_with_edits
    model = tmp_path / "my model"
    model.mkdir()
    sets = tmp_path / "My Sets"

    def busy(self, *args, **kwargs):
        raise StoreError("store.busy", path=self.path)

    args = ["corrections", "mine", "-t", str(tid), "--db", str(store.path), "--model", str(model),
            "--folder", str(sets)]  # fmt: skip
    with monkeypatch.context() as library:
        library.setattr(Store, "add_correction_set", busy)
        assert run_cli(args) == 1
    err = capsys.readouterr().err
    assert f"was written to {sets / 'mine'}" in err
    command = shlex.split(err.split("to record it: ")[1].strip())
    assert command == ["tingxie-cli", *args, "--replace"]
    assert store.correction_sets() == []
    assert run_cli(command[1:]) == 0
    assert [name for name, _, _ in store.correction_sets()] == ["mine"]


def test_cli_corrections_leave_out_what_their_threshold_doubts(store_with_edits, tmp_path, capsys):
    """Text nobody checked below --threshold keeps its segment out of the set whole (at 0.95
    every unchecked character of the two is doubtful, and each checked stretch is too short)."""
    store, _ = store_with_edits
    args = ["corrections", "strict", "--db", str(store.path), "--threshold", "0.95"]
    assert run_cli(args) == 1
    assert "error:" in capsys.readouterr().err
    assert run_cli([*args[:-2], "--threshold", "0.85"]) == 0
    assert "2 clips" in capsys.readouterr().out
    with pytest.raises(SystemExit) as usage:  # a usage error, naming the option
        run_cli([*args[:-2], "--threshold", "1.5", "--replace"])
    assert usage.value.code == 2 and "--threshold" in capsys.readouterr().err
