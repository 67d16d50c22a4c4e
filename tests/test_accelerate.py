"""The same tuning job data-parallel: 2 CPU processes (gloo) under `accelerate launch`."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from engine.model import LoadOptions, load_model
from engine.testmodels import build_model
from engine.tune.testdata import tone_corpus

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["full", "lora"])  # lora also trains from cached features
def test_two_processes_agree_on_the_trained_weights(tmp_path, method):
    build_model(tmp_path / "base", "tiny", chars="天地人和")
    tone_corpus(tmp_path / "data", 16, char_seconds=0.1)
    job = tmp_path / "job.yaml"
    job.write_text(
        f"model: base\ndata: data/manifest.tsv\noutput_dir: out\nmethod: {method}\nsteps: 3\n"
        "learning_rate: 0.003\nbatch_seconds: 2.0\nmicro_batch_seconds: 1.0\n"
        "min_seconds: 0.1\nheldout_fraction: 0.2\neval_every: 0\nprecision: fp32\n"
        "device: cpu\n",
        encoding="utf-8",
    )
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(ROOT / "packaging" / "accelerate" / "ddp.yaml"),
        "--num_processes", "2",
        "--main_process_port", str(_free_port()),
        "-m", "engine.cli.tune", str(job),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "cpu fp32 × 2" in output
    hashes = dict(re.findall(r"process (\d): weights sha256 ([0-9a-f]{64})", output))
    assert set(hashes) == {"0", "1"}, output[-3000:]
    assert hashes["0"] == hashes["1"]
    loaded = load_model(tmp_path / "out" / "model", LoadOptions(precision="fp32"))
    assert loaded.vocab[5:] == list("天地人和")
