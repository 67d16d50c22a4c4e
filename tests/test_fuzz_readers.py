"""Property-based tests of every reader of user files (Hypothesis): whatever the bytes, a reader
returns a result or raises its own named error that names the file (or row, or setting) —
never another exception, a hang or unbounded memory.

Examples per property: `FUZZ_EXAMPLES` (default 60; CI uses the default). The README's
reliability section records what these found.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import struct
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.audio import AudioError, load_audio
from engine.library.store import Store, StoreError
from engine.tune.config import TuneConfig
from engine.tune.data import DatasetError, from_common_voice, from_folder, from_manifest

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # decoding time varies with the machine's load; the timeout bounds a hang
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same examples in every CI run: a failure reproduces
)
MEMORY_HEADROOM = 1 << 30  # a reader may use up to 1 GiB more address space per example
AUDIO_SUFFIXES = [".wav", ".flac", ".ogg", ".mp3", ".m4a", ".mp4", ".opus", ""]


@contextlib.contextmanager
def _bounded_memory():
    """Cap the address space while a reader runs: an allocation driven by a lying header fails
    with MemoryError (which the properties count as a failure) instead of taking the machine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + MEMORY_HEADROOM, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _read_audio(path: Path) -> None:
    with _bounded_memory():
        try:
            audio = load_audio(path)
        except AudioError as e:
            assert str(path) in str(e)
            return
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert np.isfinite(audio).all(), f"{path}: non-finite samples reached the model"


def _clips(shared_audio: Path) -> list[Path]:
    return sorted(p for p in shared_audio.iterdir() if p.suffix in (".wav", ".mp3", ".flac"))


# ---- audio ---------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from(AUDIO_SUFFIXES))
def test_random_bytes_are_audio_or_a_named_error(tmp_path, data, suffix):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    _read_audio(path)


@FUZZ
@given(pick=st.integers(0, 10_000), cut=st.floats(0.0, 1.0), flips=st.lists(
    st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 7)), max_size=12))  # fmt: skip
def test_truncated_and_bit_flipped_real_files(tmp_path, shared_audio, pick, cut, flips):
    clips = _clips(shared_audio)
    clip = clips[pick % len(clips)]
    data = bytearray(clip.read_bytes())
    data = data[: max(1, int(len(data) * cut))] if cut < 1.0 else data
    for where, bit in flips:
        data[int(where * len(data))] ^= 1 << bit
    path = tmp_path / f"damaged{clip.suffix}"
    path.write_bytes(bytes(data))
    _read_audio(path)


def _wav_header(rate: int, channels: int, bits: int, data_len: int, fmt: int) -> bytes:
    block = max(0, channels * bits // 8) & 0xFFFF
    fmt_chunk = struct.pack("<HHIIHH", fmt, channels, rate, (rate * block) & 0xFFFFFFFF, block,
                            bits)  # fmt: skip
    body = b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk
    body += b"data" + struct.pack("<I", data_len & 0xFFFFFFFF)
    return b"RIFF" + struct.pack("<I", (len(body) + data_len + 4) & 0xFFFFFFFF) + b"WAVE" + body


@FUZZ
@given(
    rate=st.one_of(st.sampled_from([0, 1, 8000, 16000, 384000, 2**31 - 1, 2**32 - 1]),
                   st.integers(0, 2**32 - 1)),
    channels=st.sampled_from([0, 1, 2, 255, 1024, 65535]),
    bits=st.sampled_from([0, 1, 8, 16, 24, 32, 64, 65535]),
    data_len=st.sampled_from([0, 10, 2**31, 2**32 - 1]),
    fmt=st.sampled_from([1, 3, 0, 0xFFFE, 0x55]),
    payload=st.binary(max_size=2048),
)  # fmt: skip
@example(rate=1, channels=1, bits=64, data_len=0, fmt=1, payload=bytes(8))  # s64: found here
def test_absurd_wav_headers(tmp_path, rate, channels, bits, data_len, fmt, payload):
    path = tmp_path / "absurd.wav"
    path.write_bytes(_wav_header(rate, channels, bits, data_len, fmt) + payload)
    _read_audio(path)


# ---- datasets ------------------------------------------------------------------------------

_CELL = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_TABLE_TEXT = st.one_of(
    st.lists(st.lists(_CELL, max_size=5), max_size=6).map(
        lambda rows: "\n".join("\t".join(r) for r in rows)
    ),
    st.text(max_size=300),
)


def _dataset_or_named_error(load, where: Path) -> None:
    with _bounded_memory():
        try:
            dataset = load()
        except DatasetError as e:
            assert str(where) in str(e)
            return
    for problem in dataset.import_problems:
        assert problem.origin and problem.detail  # names the row and says what is wrong


@FUZZ
@given(text=_TABLE_TEXT, suffix=st.sampled_from([".tsv", ".csv"]), raw=st.binary(max_size=200))
def test_manifests(tmp_path, text, suffix, raw):
    path = tmp_path / f"manifest{suffix}"
    path.write_text("path\ttext\n" + text, encoding="utf-8")
    _dataset_or_named_error(lambda: from_manifest(path), path)
    path.write_bytes(raw)  # not UTF-8, not a table
    _dataset_or_named_error(lambda: from_manifest(path), path)


@FUZZ
@given(validated=_TABLE_TEXT, train=_TABLE_TEXT, header=st.booleans())
def test_common_voice_folders(tmp_path, validated, train, header):
    folder = tmp_path / "cv"
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    top = "client_id\tpath\tsentence\tup_votes\tdown_votes\n" if header else ""
    (folder / "validated.tsv").write_text(top + validated, encoding="utf-8")
    (folder / "train.tsv").write_text(top + train, encoding="utf-8")
    _dataset_or_named_error(lambda: from_common_voice(folder), folder)


@FUZZ
@given(sidecar=st.binary(max_size=300), name=st.sampled_from(["a", "音频 1", ".hidden", "x.y"]))
def test_txt_sidecars(tmp_path, sidecar, name):
    from engine.audio import write_wav

    folder = tmp_path / "folder"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    write_wav(folder / f"{name}.wav", np.zeros(1600, np.float32))
    (folder / f"{name}.txt").write_bytes(sidecar)
    _dataset_or_named_error(lambda: from_folder(folder), folder)


# ---- tuning configs ------------------------------------------------------------------------

_SETTING_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True),
    st.text(max_size=20), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
)  # fmt: skip


@FUZZ
@given(
    settings_=st.dictionaries(
        st.one_of(st.sampled_from(list(TuneConfig.__dataclass_fields__)), st.text(max_size=10)),
        _SETTING_VALUES,
        max_size=8,
    ),
    fmt=st.sampled_from([".json", ".yaml"]),
)
def test_tuning_configs_from_settings(tmp_path, settings_, fmt):
    import json

    import yaml

    settings_ = {"model": "m", "data": "d.tsv", "output_dir": "o", **settings_}
    path = tmp_path / f"job{fmt}"
    text = json.dumps(settings_) if fmt == ".json" else yaml.safe_dump(settings_)
    path.write_text(text, encoding="utf-8")
    _config_or_named_error(path)


@FUZZ
@given(text=st.text(max_size=300), fmt=st.sampled_from([".json", ".yaml", ".yml"]))
def test_tuning_config_text(tmp_path, text, fmt):
    path = tmp_path / f"job{fmt}"
    path.write_text(text, encoding="utf-8")
    _config_or_named_error(path)


def _config_or_named_error(path: Path) -> None:
    try:
        TuneConfig.load(path)
    except ValueError as e:
        assert str(path) in str(e), str(e)


# ---- the library database -------------------------------------------------------------------


@FUZZ
@given(data=st.one_of(st.binary(max_size=2048), st.just(b"SQLite format 3\x00" + bytes(84))))
def test_a_library_file_that_is_not_one(tmp_path, data):
    path = tmp_path / f"library-{random.random()}.db"
    path.write_bytes(data)
    try:
        Store(path).close()
    except StoreError as e:
        assert str(path) in str(e)
