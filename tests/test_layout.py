"""The engine's layout, read from its imports: inference at the top of `engine/`, tuning in
`engine/tune/`, the transcript library in `engine/library/`. Inference imports neither wing, no
module imports Qt, and there is no import circle anywhere (lazy imports inside functions count)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "engine"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every engine module `path` imports, at module level or inside a function."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)  # `from engine import x`
    return {m for m in found if m == "engine" or m.startswith(("engine.", "PySide6", "app"))}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ENGINE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in _imports(path) if m in modules and m != name}
    return graph


def _wing(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 2 and parts[1] in ("tune", "library", "cli"):
        return parts[1]
    return "inference"


def test_inference_imports_neither_wing_nor_qt():
    offenders = []
    for name, path in ((_module_name(p), p) for p in ENGINE.rglob("*.py")):
        imported = _imports(path)
        if any(m.startswith(("PySide6", "app")) for m in imported):
            offenders.append(f"{name} imports Qt or the app")
        if _wing(name) == "inference" and name != "engine":
            wings = {m for m in imported if _wing(m) in ("tune", "library", "cli")}
            if wings:
                offenders.append(f"{name} imports {sorted(wings)}")
    assert offenders == []


def test_tuning_does_not_import_the_library():
    graph = _graph()
    assert {(a, b) for a, deps in graph.items() for b in deps
            if _wing(a) == "tune" and _wing(b) == "library"} == set()  # fmt: skip


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_no_import_circle():
    assert _cycles(_graph()) == []


def test_the_checker_sees_a_planted_circle(tmp_path, monkeypatch):
    """The circle test would fail on the old layout's jobloop ⇄ train pair (a lazy import)."""
    pkg = tmp_path / "engine"
    (pkg / "tune").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "tune" / "__init__.py").write_text("")
    (pkg / "tune" / "a.py").write_text("from .b import x\n")
    (pkg / "tune" / "b.py").write_text("def f():\n    from engine.tune.a import y\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "ENGINE", pkg)
    graph = _graph()
    assert graph["engine.tune.a"] == {"engine.tune.b"}
    assert graph["engine.tune.b"] == {"engine.tune.a"}
    assert _cycles(graph) == [["engine.tune.a", "engine.tune.b", "engine.tune.a"]]


def test_job_config_and_events_import_without_torch():
    """The app and `tune --help` read jobs and relay events without paying for torch."""
    code = (
        "import sys, engine.tune.config, engine.tune.events, engine.library.store; "
        "print(sorted(m for m in ('torch', 'transformers', 'PySide6') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_evaluate_reads_manifests_without_the_trainer():
    """`evaluate` reads manifests through the tuning wing's data module; loading it must not
    pull in the training loop (accelerate, peft, optimizers)."""
    code = (
        "import sys, engine.tune.evaluate; "
        "print(sorted(m for m in ('engine.tune.loop', 'accelerate', 'peft') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
