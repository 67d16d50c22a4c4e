"""What a user reads: every glyph drawable by the app's font, Qt's own buttons and engine
errors in the UI language."""

from __future__ import annotations

import ast
import string
import unicodedata
from pathlib import Path

import pytest
from PySide6.QtGui import QFont, QFontInfo, QFontMetrics

import app.errors  # (registers the engine errors' wording)
import app.review.strings  # (registers the review strings)
import app.tune.strings  # noqa: F401  (registers the Tune page's strings)
from app.fonts import CJK_FAMILIES, cjk_font
from app.i18n import STRINGS

APP = Path(__file__).resolve().parents[1] / "app"


def _source_strings() -> list[str]:
    """String literals in the app's code (docstrings aside): labels set outside the table."""
    found = []
    for path in sorted(APP.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        found += [
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and not node.value.isascii()
        ]
    return found


def _ui_characters() -> set[str]:
    """Every drawn character: control and format characters (the transcript's hidden speaker
    label, U+200B) are laid out with no glyph and no width, whatever the font."""
    texts = [text for pair in STRINGS.values() for text in pair] + _source_strings()
    return {c for text in texts for c in text if unicodedata.category(c) not in ("Cc", "Cf")}


def test_no_emoji_or_symbol_that_fonts_commonly_lack(qapp):
    """Old: "没有存疑的文字了。🎉" (a box in Noto Sans CJK) and a "⟳" button. Holds with any
    font installed: no pictographs, no symbols outside the Basic Multilingual Plane."""
    in_gb2312 = set("■")  # symbols of GB 2312, so in every Simplified Chinese font
    bad = sorted(
        c
        for c in _ui_characters()
        if ord(c) > 0xFFFF or (unicodedata.category(c) in ("So", "Co", "Cn") and c not in in_gb2312)
    )
    assert bad == []


def test_every_character_is_in_the_cjk_font(qapp):
    """Each character of every UI string (both languages) is in the font the app asks for, with
    font merging off, so no glyph depends on a fallback font a user may not have."""
    font = cjk_font()
    font.setStyleStrategy(QFont.StyleStrategy.NoFontMerging)
    family = QFontInfo(font).family()
    if family not in CJK_FAMILIES[:-1]:
        pytest.skip(f"no CJK font installed (resolved to {family}); see fonts-noto-cjk")
    metrics = QFontMetrics(font)
    missing = sorted(c for c in _ui_characters() if not metrics.inFontUcs4(ord(c)))
    assert missing == [], f"{family} lacks {missing}"
    texts = [text for pair in STRINGS.values() for text in pair] + _source_strings()
    hidden = {c for text in texts for c in text if unicodedata.category(c) == "Cf"}
    assert all(
        metrics.horizontalAdvance(c + "字") == metrics.horizontalAdvance("字") for c in hidden
    )


@pytest.fixture
def restore_language():
    from app.i18n import language, set_language

    before = language()
    yield set_language
    set_language(before)  # the table and Qt's translator are global


def test_qt_standard_buttons_follow_the_ui_language(qapp, restore_language):
    """Old: "OK" and "Yes" in the Chinese UI (Qt's translations were never loaded)."""
    from PySide6.QtWidgets import QMessageBox

    buttons = QMessageBox.StandardButton

    def texts() -> tuple[str, str]:
        box = QMessageBox()
        box.setStandardButtons(buttons.Ok | buttons.Yes)
        return box.button(buttons.Ok).text(), box.button(buttons.Yes).text()

    restore_language("zh")
    ok, yes = texts()
    assert ok == "确定" and yes.startswith("是")
    assert qapp.translate("QFileDialog", "Look in:") != "Look in:"
    restore_language("en")  # switching back drops the Chinese catalogue
    assert texts() == ("OK", "&Yes")


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_engine_error_code_has_chinese_and_english_with_the_same_fields():
    """Walks every code the engine can raise (engine.errors.MESSAGES, which test_errors ties to
    the raise sites): each has both wordings in the app's table, taking the same parameters."""
    from app.errors import ZH
    from engine.errors import MESSAGES

    assert sorted(set(MESSAGES) ^ set(ZH)) == []
    for code, english in MESSAGES.items():
        en, zh = STRINGS[f"error.{code}"]
        assert en == english
        assert _fields(zh) == _fields(english), code


def test_a_missing_hub_model_offline_reads_in_the_ui_language(qapp, restore_language):
    """The real loader, offline, for a Hub id that is not cached. Old: "model ... could not be
    downloaded (LocalEntryNotFoundError) ..." in English inside the Chinese UI."""
    from app.errors import error_text
    from app.worker import EngineWorker

    worker = EngineWorker()  # the real engine entry points
    failed = []
    worker.model_failed.connect(failed.append)
    worker.load_model("nobody-tingxie/no-such-model")
    (error,) = failed
    restore_language("zh")
    chinese = error_text(error)
    assert chinese.startswith("模型“nobody-tingxie/no-such-model”不在 Hugging Face 缓存中")
    assert "请选择本地模型文件夹" in chinese and "Choose" not in chinese
    restore_language("en")
    assert error_text(error) == str(error)
    assert str(error).startswith("model 'nobody-tingxie/no-such-model' is not in the Hugging")


@pytest.mark.parametrize(
    ("code", "params", "cli_only", "app_ways"),
    [
        ("model.pickle_only", {"path": "/m"}, "(--allow-pickle)",
         ("Model → Choose model…", "Tune → How", "模型 → 选择模型…", "微调 → 怎么训练")),
        ("lm.hotword_too_long", {"path": "/h.txt", "line": 3, "text": "好…", "length": 99,
                                 "limit": 50}, "--domain-text",
         ("Model → Language model → Domain text…", "模型 → 语言模型 → 领域文本…")),
    ],
)  # fmt: skip
def test_a_way_out_only_the_cli_has_is_worded_the_apps_way(
    qapp, restore_language, code, params, cli_only, app_ways
):
    """Before: the app told its users to pass --allow-pickle, an option of tingxie-cli."""
    from app.errors import error_text
    from engine.errors import TingxieError

    error = TingxieError(code, **params)
    assert cli_only in str(error)
    texts = []
    for language in ("en", "zh"):
        restore_language(language)
        texts.append(error_text(error))
        assert cli_only not in texts[-1] and "/" in texts[-1]
    assert all(any(way in text for text in texts) for way in app_ways)


def test_nested_errors_and_unknown_codes(qapp, restore_language, tmp_path, monkeypatch):
    from app.errors import error_text
    from engine.audio import AudioError
    from engine.errors import TingxieError

    inner = AudioError("audio.empty", path=tmp_path / "a.wav")
    outer = TingxieError("dataset.clip_failed", transcript=3, error=inner)
    restore_language("zh")
    assert (
        error_text(outer) == f"转写 3：{tmp_path / 'a.wav'}：文件是空的（0 字节）；请重新录制或导出"
    )
    assert error_text(OSError("disk on fire")) == "disk on fire"  # not ours: its own text
    monkeypatch.delitem(STRINGS, "error.audio.empty")  # a code the app has no wording for
    assert error_text(inner) == str(inner)  # falls back to the engine's English


def test_file_dialog_filters_keep_their_patterns_in_ascii_brackets():
    """Qt finds a filter's patterns only inside ASCII brackets at its end: the Chinese
    "清单文件（*.tsv *.csv）" listed no manifest at all, and "音频和视频（…）" hid .3gp and
    .webm."""
    import re

    filters = {key: pair for key, pair in STRINGS.items() if key.endswith("_filter")}
    assert {"dialog.media_filter", "tune.sources.manifest_filter"} <= set(filters)
    for key, pair in filters.items():
        for text in pair:
            assert re.search(r" \([^()（）]+\)$", text), f"{key}: {text}"
