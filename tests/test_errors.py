"""Engine errors carry a stable code and parameters; str() stays the English one-liner."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from engine.audio import AudioError, probe
from engine.errors import MESSAGES, TingxieError
from engine.library.corrections import CorrectionsError
from engine.model import ModelLoadError, resolve_model

ROOT = Path(__file__).resolve().parents[1]
_CODE = re.compile(
    r"^(lm|model|audio|microphone|recording|transcribe|store|dataset|hub|export|embed|punctuation"
    r"|speakers|tune)\.[a-z_]+$"
)


def _code_literals(folder: str, *, any_call: bool = False) -> set[str]:
    """The codes `folder`'s code gives errors: string literals passed first to a
    `...Error(...)` call (to any call, with `any_call`) or assigned to a variable named `code`
    (both arms of an `if`)."""
    found = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            callee = getattr(node, "func", None)
            callee = getattr(callee, "id", None) or getattr(callee, "attr", "")
            if isinstance(node, ast.Call) and (any_call or callee.endswith("Error")) and node.args:
                value = node.args[0]
            elif isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == [
                "code"
            ]:
                value = node.value
            else:
                continue
            arms = [value.body, value.orelse] if isinstance(value, ast.IfExp) else [value]
            found.update(
                arm.value
                for arm in arms
                if isinstance(arm, ast.Constant) and isinstance(arm.value, str)
            )
    return found


def test_every_code_raised_has_a_message_and_every_message_is_used():
    """A typo in a code would turn an error into a KeyError; a code no one raises is dead.
    (The app's worker wraps unexpected failures in engine errors of its own codes.)"""
    raised = _code_literals("engine", any_call=True) | _code_literals("app")
    used = {c for c in raised if _CODE.match(c)}
    assert sorted(used - set(MESSAGES)) == []
    assert sorted(set(MESSAGES) - used) == []


def test_every_template_formats_with_its_own_fields():
    for code, template in MESSAGES.items():
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        params = dict.fromkeys(fields, 1.5)  # a float formats under every spec used
        assert "\n" not in str(TingxieError(code, **params)), code


def test_message_is_the_english_one_liner_and_the_parts_stay_apart(tmp_path):
    with pytest.raises(AudioError) as excinfo:
        probe(tmp_path / "gone.wav")
    error = excinfo.value
    assert isinstance(error, TingxieError) and isinstance(error, ValueError)
    assert error.code == "audio.missing" and error.path == tmp_path / "gone.wav"
    assert str(error) == f"{tmp_path / 'gone.wav'}: no such file; check the path and the file name"


def test_a_missing_hub_model_offline_is_coded(monkeypatch):
    """The message users saw in English inside the Chinese UI, now with a code to word it by."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as excinfo:
        resolve_model("nobody-tingxie/no-such-model")
    error = excinfo.value
    assert error.code == "model.not_cached"
    assert error.params["source"] == "nobody-tingxie/no-such-model"
    assert str(error).startswith("model 'nobody-tingxie/no-such-model' is not in the Hugging Face")


def test_an_error_can_carry_another_as_a_parameter(tmp_path):
    inner = AudioError("audio.empty", path=tmp_path / "a.wav")
    outer = CorrectionsError("dataset.clip_failed", transcript=3, error=inner)
    assert str(outer) == f"transcript 3: {inner}"
    assert outer.params["error"] is inner
