"""The desktop app with the full-size model (issue 14, part 2): how long from launch until it can
transcribe, and how much memory it holds then and while it transcribes a file.

    .venv/bin/python bench/bench_app.py [--minutes 1]

A random checkpoint of the default model's exact architecture (XLSR-53 large, bench/.cache/,
built once by bench_transcribe.py's code) is loaded once beforehand, so the runs below find
what a second launch finds: the weights in the user's cache in the compute precision
(engine/model.py) and the files in the OS page cache. Then two processes, one after the other,
each with this machine's cores:

- app: the window as `tingxie` builds it (offscreen Qt, a fresh settings file naming the model,
  an empty library), shown and started; ready = from the process's launch until the engine
  reports the model loaded (`model_loaded`: transcriber and streamer built); then one file of
  real clips looped to --minutes, queued as a dropped file is, until `file_done`.
- engine: the same load and the same file through `engine` alone (`load_model`, `Transcriber`),
  the baseline: what the app adds on top of the engine it runs.

`--runtime default` (the default) loads the checkpoint as a user's first choice would: bf16 on a
CPU with native bf16, its int8 copy on ONNX Runtime on other CPUs (engine/model.py; the warm-up
makes it); `--runtime torch` forces PyTorch (fp32 there), as *Model → Runtime → PyTorch* does;
`--runtime onnx-int8` runs both on the checkpoint's ONNX int8 export (engine/onnx.py; exported
once into bench/.cache by bench_transcribe.py's code).

Resident memory from /proc/self/status: VmRSS when ready, VmHWM (the peak) after the file.
Targets: ready <= 5 s, RSS <= 1.5 GB. Last line:
`app ready: X s (engine alone Y s); RSS ready A MB, peak P MB (engine alone B / Q MB)`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
READY_TARGET_S = 5.0
RSS_TARGET_MB = 1536


def memory_mb() -> dict[str, float]:
    """VmRSS and VmHWM of this process, in MB (bench_train's --memory reads them too)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def run_app(model: str, audio: str, launched: float, backend: str) -> dict:
    from PySide6.QtCore import QEventLoop, QObject, QTimer, Slot
    from PySide6.QtWidgets import QApplication

    from app import settings
    from app.main import build_window
    from engine.library.store import Store

    qt = QApplication.instance() or QApplication([])
    work = Path(tempfile.mkdtemp(prefix="app-", dir=os.environ["XDG_DATA_HOME"]))
    store = settings.open_settings(work / "settings.ini")
    prefs = settings.Preferences(model=model, model_chosen=True, backend=backend,
                                 recordings_dir=str(work / "recordings"))  # fmt: skip
    settings.save(store, prefs)
    window = build_window(store, library=Store(work / "library.sqlite"))
    result: dict = {}
    loop = QEventLoop()

    class Watch(QObject):
        """Receives the engine's signals on this (the window's) thread, as the window does: a
        plain function would run on the engine thread that emits."""

        @Slot(object)
        def loaded(self, _summary) -> None:
            result["ready_s"] = time.time() - launched
            result["ready_rss_mb"] = memory_mb()["VmRSS"]
            window.add_files([audio])

        @Slot(object)
        def failed(self, error) -> None:
            result["error"] = str(error)
            loop.quit()

        @Slot(int, object)
        def file_failed(self, _job, error) -> None:
            self.failed(error)

        @Slot(int, object)
        def done(self, *_args) -> None:
            result["file_s"] = time.time() - launched - result["ready_s"]
            result["peak_rss_mb"] = memory_mb()["VmHWM"]
            loop.quit()

    watch = Watch()
    window.worker.model_loaded.connect(watch.loaded)
    window.worker.model_failed.connect(watch.failed)
    window.worker.file_failed.connect(watch.file_failed)
    window.worker.file_done.connect(watch.done)
    window.show()
    window.start()
    QTimer.singleShot(900_000, loop.quit)
    loop.exec()
    window.close()
    qt.processEvents()
    return result


def run_engine(model: str, audio: str, launched: float, backend: str) -> dict:
    from engine.loader import load_model
    from engine.model import LoadOptions
    from engine.results import Segment
    from engine.transcribe import Transcriber

    loaded = load_model(model, LoadOptions(backend=backend))
    transcriber = Transcriber(loaded)
    result = {"ready_s": time.time() - launched, "ready_rss_mb": memory_mb()["VmRSS"],
              "runtime": f"{loaded.runtime}, {loaded.precision}"}  # fmt: skip
    items, _info = transcriber.transcribe(audio)
    text = "".join(c.text for s in items if isinstance(s, Segment) for c in s.chars)
    result["file_s"] = time.time() - launched - result["ready_s"]
    result["peak_rss_mb"] = memory_mb()["VmHWM"]
    result["characters"] = len(text)
    return result


def child(side: str, model: str, audio: str, launched: float, backend: str) -> None:
    result = (run_app if side == "app" else run_engine)(model, audio, launched, backend)
    print("RESULT " + json.dumps(result), flush=True)


def launch(side: str, model: Path, audio: Path, env: dict, backend: str) -> dict:
    launched = time.time()
    cmd = [sys.executable, __file__, "--child", side, "--model", str(model), "--audio",
           str(audio), "--launched", repr(launched), "--backend", backend]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{side} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from bench_accuracy import positive_number

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=positive_number, default=1.0, help="length of the file")
    parser.add_argument(
        "--runtime",
        choices=("default", "torch", "onnx-int8"),
        default="default",
        help="the checkpoint on the runtime auto picks (default) or on PyTorch (torch), or its "
        "ONNX int8 export (ONNX Runtime, engine/onnx.py), exported once into bench/.cache",
    )
    parser.add_argument("--child", choices=("app", "engine"), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--audio", help=argparse.SUPPRESS)
    parser.add_argument("--launched", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="auto", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.child:
        child(args.child, args.model, args.audio, args.launched, args.backend)
        return

    from bench_transcribe import build_exports, build_full_model, build_long_audio

    model, audio = build_full_model(), build_long_audio(args.minutes)
    if args.runtime == "onnx-int8":
        model = build_exports(model, ["onnxruntime-int8"])["onnxruntime-int8"]
    with tempfile.TemporaryDirectory(prefix="bench-app-") as scratch:  # settings, library, data
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1",
               "XDG_DATA_HOME": scratch}  # fmt: skip
        report(args, model, audio, env)


def report(args, model: Path, audio: Path, env: dict) -> None:
    from bench_transcribe import _cpu_name

    print(f"{_cpu_name()}, {len(os.sched_getaffinity(0))} cores; full-size model {model} "
          f"({args.runtime}); {args.minutes:g} min file")  # fmt: skip
    backend = "torch" if args.runtime == "torch" else "auto"
    warm = launch("engine", model, audio, env, backend)  # fills the weights and page caches
    print(f"warm-up (not counted): ready {warm['ready_s']:.1f} s; runs {warm['runtime']}")
    engine = launch("engine", model, audio, env, backend)
    app = launch("app", model, audio, env, backend)
    if "error" in app:
        raise SystemExit(f"the app failed: {app['error']}")
    for name, r in (("engine alone", engine), ("app", app)):
        print(f"{name:13s} ready {r['ready_s']:5.1f} s  RSS ready {r['ready_rss_mb']:6.0f} MB  "
              f"file {r['file_s']:5.1f} s  peak RSS {r['peak_rss_mb']:6.0f} MB")  # fmt: skip
    print(f"targets: ready <= {READY_TARGET_S:g} s, RSS <= {RSS_TARGET_MB} MB")
    print(f"app ready: {app['ready_s']:.1f} s (engine alone {engine['ready_s']:.1f} s); RSS ready "
          f"{app['ready_rss_mb']:.0f} MB, peak {app['peak_rss_mb']:.0f} MB (engine alone "
          f"{engine['ready_rss_mb']:.0f} / {engine['peak_rss_mb']:.0f} MB)")  # fmt: skip


if __name__ == "__main__":
    main()
