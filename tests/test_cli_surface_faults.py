"""`tingxie-cli` faults a bug hunter found at its surface: Ctrl+C, a reader that stops early
(`| head`), an output that cannot encode Chinese, `library --export` over existing files and the
store itself, ids too large for SQLite, a typo'd input told only after the model loads, and
option errors that named the engine's fields instead of the command's options."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.cli import main
from engine.cli.library import check_transcript_id
from engine.library.store import Store, TranscriptNotFound
from engine.results import Char, Segment

REPO = Path(__file__).resolve().parents[1]
TOO_LARGE = "99999999999999999999"  # beyond SQLite's 64-bit INTEGER


def _store(path: Path) -> int:
    """A store at `path` with one transcript; its id."""
    chars = tuple(Char(t, 0.1 * i, 0.1 * i + 0.1, 0.9) for i, t in enumerate("今天天气很好"))
    with Store(path) as store:
        return store.add_transcript([Segment(0, 0.0, 0.6, chars)], title="会议")


def _wav(path: Path) -> Path:
    sf.write(path, np.zeros(16_000, np.float32), 16_000)
    return path


# --- Ctrl+C ---------------------------------------------------------------------------------


def _press_ctrl_c(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("command", ["transcribe", "evaluate", "embed"])
def test_ctrl_c_while_the_model_loads_is_one_line_and_status_130(
    command, tmp_path, monkeypatch, capsys
):
    """Before: a KeyboardInterrupt traceback (exit -2) in evaluate, embed, and transcribe or
    watch while the model loaded: main had no handler."""
    import engine.cli.transcribe
    import engine.embed
    import engine.loader
    import engine.model
    import engine.tune.evaluate

    # Every module that binds load_model when imported: one imported here first, under the
    # fake, would keep it for the tests after this one (a Ctrl+C in test_model_loading).
    modules = (
        engine.cli.transcribe,
        engine.embed,
        engine.loader,
        engine.model,
        engine.tune.evaluate,
    )
    for module in modules:
        monkeypatch.setattr(module, "load_model", _press_ctrl_c)
    audio = _wav(tmp_path / "a.wav")
    manifest = tmp_path / "m.tsv"
    manifest.write_text(f"path\ttext\n{audio}\t今天\n", encoding="utf-8")
    argv = {
        "transcribe": ["transcribe", str(audio), "--model", "m", "--no-punctuation"],
        "evaluate": ["evaluate", "--model", "m", "--data", str(manifest)],
        "embed": ["embed", str(audio), "--model", "m", "--out", str(tmp_path)],
    }[command]
    try:
        rc = main(argv)
    except KeyboardInterrupt:
        pytest.fail("Ctrl+C escaped tingxie-cli's main: a traceback on the terminal")
    err = capsys.readouterr().err
    assert rc == 130 and err.splitlines()[-1] == "interrupted", err


# --- a reader that stops early ----------------------------------------------------------------


@pytest.mark.parametrize("command", ["library", "push"])
def test_a_reader_that_is_gone_ends_the_command_quietly(command, tiny_model_dir, tmp_path):
    """`tingxie-cli library | head -1`: before, "error: [Errno 32] Broken pipe" and status 1
    (library's `except OSError`), or a BrokenPipeError traceback (push --dry-run, evaluate)."""
    db = tmp_path / "lib.db"
    _store(db)
    argv = {
        "library": ["library", "--db", str(db)],
        "push": ["push", str(tiny_model_dir), "me/x", "--dry-run"],
    }[command]
    code = "import sys; from engine.cli import main; sys.exit(main(sys.argv[1:]))"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    read, write = os.pipe()
    os.close(read)  # the reader has gone before the first line
    try:
        done = subprocess.run([sys.executable, "-c", code, *argv], stdout=write, cwd=REPO,
                              env=env, stderr=subprocess.PIPE, text=True, timeout=120)  # fmt: skip
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (141, "")


# --- an output that cannot encode Chinese -------------------------------------------------------


class _Terminal(io.TextIOWrapper):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "shown"), [(io.TextIOWrapper, "听写"), (_Terminal, "\\u542c\\u5199")]
)
def test_help_on_an_output_that_cannot_encode_chinese(stream, shown, monkeypatch):
    """Windows writes redirected output in its ANSI code page (cp1252): before, even --help
    failed with UnicodeEncodeError. A file gets UTF-8 (readable); a terminal, escapes."""
    raw = io.BytesIO()
    out = stream(raw, encoding="cp1252")
    monkeypatch.setattr(sys, "stdout", out)
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    out.flush()
    assert exit_.value.code == 0
    assert shown in raw.getvalue().decode(out.encoding)


# --- library --export ------------------------------------------------------------------------


def test_library_export_keeps_an_existing_file_unless_overwrite(tmp_path, capsys):
    """Before: `library --export 1 notes.txt` replaced the user's notes.txt without a word."""
    db = tmp_path / "lib.db"
    tid = _store(db)
    notes = tmp_path / "notes.txt"
    notes.write_text("my own notes\n", encoding="utf-8")
    export = ["library", "--db", str(db), "--export", str(tid), str(notes)]
    assert main(export) == 1
    err = capsys.readouterr().err
    assert f"{notes} already exists" in err and "--overwrite" in err
    assert notes.read_text(encoding="utf-8") == "my own notes\n"
    assert main([*export, "--overwrite"]) == 0
    assert notes.read_text(encoding="utf-8").startswith("今天天气很好")


def test_library_export_never_writes_over_the_store(tmp_path, capsys):
    """Before: `--db lib.json --export 1 lib.json` wrote the transcript over the database."""
    db = tmp_path / "lib.json"
    tid = _store(db)
    before = db.read_bytes()
    export = ["library", "--db", str(db), "--export", str(tid), str(db)]
    for overwrite in ([], ["--overwrite"]):  # not even with --overwrite
        assert main([*export, *overwrite]) == 1
        assert "the library's own file" in capsys.readouterr().err
        assert db.read_bytes() == before
    assert main(["library", "--db", str(db)]) == 0
    assert "会议" in capsys.readouterr().out


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_library_export_to_a_folder_asks_for_a_file_name(tmp_path, capsys, overwrite):
    """Before: with --overwrite, `[Errno 21] Is a directory: '….tmp' -> 'some_folder.txt'`;
    without, "already exists; add --overwrite", which then failed so."""
    db = tmp_path / "lib.db"
    tid = _store(db)
    folder = tmp_path / "some_folder.txt"
    folder.mkdir()
    (folder / "inside.txt").write_text("kept\n", encoding="utf-8")
    assert main(["library", "--db", str(db), "--export", str(tid), str(folder), *overwrite]) == 1
    err = capsys.readouterr().err
    assert f"{folder}: that is a folder" in err and "file name" in err
    assert "Errno" not in err and "--overwrite" not in err
    assert [p.name for p in folder.iterdir()] == ["inside.txt"]
    assert (folder / "inside.txt").read_text(encoding="utf-8") == "kept\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lib.db", "some_folder.txt"]


# --- ids too large for SQLite ----------------------------------------------------------------


def test_an_id_too_large_for_sqlite_is_not_in_the_store(tiny_model_dir, tmp_path, capsys):
    """Before: an OverflowError traceback from sqlite3."""
    db = tmp_path / "lib.db"
    _store(db)
    assert main(["library", "--db", str(db), "--export", TOO_LARGE, str(tmp_path / "x.txt")]) == 1
    assert f"transcript {TOO_LARGE} is not in the store" in capsys.readouterr().err
    argv = ["corrections", "x", "--db", str(db), "--model", str(tiny_model_dir), "-t", TOO_LARGE]
    assert main(argv) == 1
    assert f"transcript {TOO_LARGE} is not in the store" in capsys.readouterr().err
    assert not (tmp_path / "x.txt").exists()


def test_the_store_owns_the_not_in_the_store_wording(tmp_path):
    """Before: engine/cli/library.py spelled out its own copy of the store's message, free to
    drift from it; both now raise the store's TranscriptNotFound (a KeyError)."""
    with Store(tmp_path / "lib.db") as store, pytest.raises(TranscriptNotFound) as in_store:
        store.info(42)
    with pytest.raises(TranscriptNotFound) as too_large:
        check_transcript_id(int(TOO_LARGE))
    assert in_store.value.args[0] == "transcript 42 is not in the store"
    assert too_large.value.args[0] == f"transcript {TOO_LARGE} is not in the store"
    assert isinstance(too_large.value, KeyError)  # callers catch KeyError


# --- a typo'd input ----------------------------------------------------------------------------


def test_a_missing_input_is_told_without_loading_a_model(tmp_path, monkeypatch, capsys):
    """Before: `transcribe meetng.m4a` loaded the model first (offline, the default model's
    "not in the cache" was all it said)."""
    import engine.cli.transcribe as cmd

    monkeypatch.setattr(cmd, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    typo = tmp_path / "meetng.m4a"
    assert main(["transcribe", str(typo), "--no-punctuation"]) == 1
    err = capsys.readouterr().err
    assert err == f"error: {typo}: no such file; check the path and the file name\n"


def test_a_missing_input_is_told_first_and_the_others_are_transcribed(
    tiny_model_dir, tmp_path, capsys
):
    typo, good = tmp_path / "meetng.m4a", _wav(tmp_path / "good.wav")
    argv = ["transcribe", str(typo), str(good), "--model", str(tiny_model_dir), "--no-punctuation"]
    assert main(argv) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"error: {typo}: no such file; check the path and the file name"
    assert any(line.startswith("model ") for line in lines) and (tmp_path / "good.txt").is_file()
    assert lines[-3:] == ["1 of 2 files transcribed", "failed:", f"  {typo}"]


# --- option errors name the command's options ---------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["evaluate", "--model", "m", "--data", "d.tsv", "--limit", "0"], "argument --limit: '0'"),
        (["export", "m", "out", "--check-limit", "0"], "argument --check-limit: '0'"),
        (["watch", "in", "--poll", "0"], "argument --poll: '0' is not a number of seconds > 0"),
        (["watch", "in", "--settle", "-1"], "argument --settle: '-1' is not a number of seconds"),
        (["watch", "in", "--poll", "nan"], "argument --poll: 'nan'"),
    ],
)
def test_option_errors_name_the_option(argv, said, capsys):
    """Before: `limit=0: … (or None for all rows)`, `check_limit=0`, `settle_seconds must be ≥ 0
    and poll_seconds > 0` — the engine's fields, after the work had started."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and said in err
    assert not any(word in err for word in ("None", "_limit", "_seconds", "limit="))


def test_library_export_without_a_suffix_names_the_suffixes_only(tmp_path, capsys):
    """Before: "… name the file .txt / .srt / .vtt / .json or pass fmt" (no such option)."""
    db = tmp_path / "lib.db"
    tid = _store(db)
    assert main(["library", "--db", str(db), "--export", str(tid), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "name the file .txt / .srt / .vtt / .json" in err and "fmt" not in err


def test_embed_checks_layer_once_before_the_files(tiny_model_dir, tmp_path, capsys):
    """Before: `embed a b c --layer 5` failed each file with `layer=5: …` and exited 1."""
    audio = str(_wav(tmp_path / "a.wav"))
    argv = ["embed", audio, audio, audio, "--model", str(tiny_model_dir), "--out",
            str(tmp_path / "e"), "--layer", "5"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == "error: --layer 5: this model has layers 0-2 (-1 = last)\n"


def test_python_dash_m_engine_cli_runs_the_command_line():
    """`python -m engine.cli` had no __main__: "No module named engine.cli.__main__"."""
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("tingxie-cli ")
