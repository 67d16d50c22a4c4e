"""Pure helpers of the app: levels, ring buffer, confidence bands, strings, preferences."""

from __future__ import annotations

import re

import numpy as np
import pytest

from app import i18n
from app.confidence import BAND_COLORS, Bands, char_tooltip, tail_color
from app.levels import ENVELOPE_BIN, ENVELOPE_RATE, RingBuffer, envelope, level_percent
from engine.results import Alternative, Char


@pytest.fixture(autouse=True)
def _chinese_ui_after_each_test():
    """Tests switch the UI language; leave the default (Chinese) for whatever runs next."""
    yield
    from app import i18n

    i18n.set_language("zh")


def test_envelope_keeps_min_and_max_of_each_bin_and_drops_partial_bin():
    samples = np.array([0.1, -0.5, 0.3, 0.9, -0.2, 0.0, 0.7], dtype=np.float32)
    assert envelope(samples, 3).tolist() == pytest.approx([-0.5, 0.3, -0.2, 0.9])
    assert len(envelope(samples[:2], 3)) == 0


def test_envelope_rate_matches_bin_size_at_16k():
    one_second = np.zeros(16_000, dtype=np.float32)
    assert len(envelope(one_second, ENVELOPE_BIN)) == ENVELOPE_RATE


def test_level_percent_is_a_db_scale():
    assert level_percent(np.zeros(100, dtype=np.float32)) == 0
    assert level_percent(np.array([], dtype=np.float32)) == 0
    assert level_percent(np.array([1.0, -0.2])) == 100
    assert level_percent(np.array([0.1])) == 67  # -20 dBFS on a -60..0 scale
    assert level_percent(np.array([1e-4])) == 0  # below the floor


def test_ring_buffer_keeps_latest_samples_in_order():
    ring = RingBuffer(5)
    ring.extend(np.arange(3))
    assert ring.values().tolist() == [0, 1, 2]
    ring.extend(np.arange(3, 7))
    assert ring.values().tolist() == [2, 3, 4, 5, 6]
    ring.extend(np.arange(7, 20))
    assert ring.values().tolist() == [15, 16, 17, 18, 19]
    assert len(ring) == 5
    ring.clear()
    assert len(ring) == 0 and ring.values().tolist() == []
    with pytest.raises(ValueError, match="capacity"):
        RingBuffer(0)


def test_bands_split_at_threshold_and_halfway_to_one():
    bands = Bands(0.6)
    assert bands.high == pytest.approx(0.8)
    assert [bands.band(c) for c in (0.1, 0.59, 0.6, 0.79, 0.8, 1.0)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]
    assert bands.color(0.2) == BAND_COLORS["low"]
    assert Bands(0.2).band(0.5) == "medium"
    with pytest.raises(ValueError, match="threshold"):
        Bands(1.5)


def test_tail_color_is_lighter_same_hue():
    assert tail_color("#000000") == "#8c8c8c"
    assert tail_color("#ffffff") == "#ffffff"
    red = tail_color("#c62828")
    r, g, b = (int(red[i : i + 2], 16) for i in (1, 3, 5))
    assert r > g and r > b and g > 0x28


def test_tooltip_shows_confidence_time_and_alternatives():
    i18n.set_language("en")
    char = Char("是", 1.24, 1.30, 0.42, (Alternative("事", 0.31), Alternative("市", 0.12)))
    text = char_tooltip(char)
    assert "是" in text and "42%" in text and "1.24" in text and "1.30" in text
    assert "事 31%" in text and "市 12%" in text
    assert "No alternatives" in char_tooltip(Char("的", 0, 0.02, 0.99))
    i18n.set_language("zh")
    assert "置信度" in char_tooltip(char)


def test_every_string_has_both_languages_with_the_same_placeholders():
    # every module that adds its strings on import, so that run alone it sees them all
    import app.about
    import app.errors
    import app.export.strings
    import app.features
    import app.review.strings
    import app.tune.strings  # noqa: F401

    assert {"about.title", "review.progress", "tune.result.cer_unknown_rows"} <= set(i18n.STRINGS)
    for key, (en, zh) in i18n.STRINGS.items():
        assert en and zh, key
        names = re.compile(r"\{(\w+)")
        assert set(names.findall(en)) == set(names.findall(zh)), key


def test_language_falls_back_to_chinese_and_unknown_key_fails():
    assert i18n.set_language("fr") == "zh"
    assert i18n.tr("action.record") == "录音"
    assert i18n.set_language("en") == "en"
    assert i18n.tr("action.record") == "Record"
    with pytest.raises(KeyError):
        i18n.tr("no.such.key")
    i18n.set_language("zh")


def test_preferences_round_trip_and_survive_garbage(tmp_path):
    from app import settings

    store = settings.open_settings(tmp_path / "t.ini")
    prefs = settings.Preferences(
        model="/models/x", model_chosen=True, language="en", threshold=0.35, input_device="USB"
    )
    settings.save(store, prefs)
    again = settings.load(settings.open_settings(tmp_path / "t.ini"))
    assert again == prefs
    store.setValue("threshold", "not a number")
    store.setValue("language", "xx")
    bad = settings.load(store)
    assert bad.threshold == settings.Preferences().threshold
    assert bad.language == "zh"
    assert settings.Preferences(threshold=7).threshold == 1.0
    assert settings.Preferences().recordings_dir.endswith("recordings")


def test_a_hand_edited_threshold_with_a_decimal_comma_is_read(tmp_path):
    """threshold=0,5 (as most of Europe types a decimal) was silently the default, 0.6."""
    from app import settings

    ini = tmp_path / "t.ini"
    ini.write_text("[General]\nthreshold=0,5\n", encoding="utf-8")
    assert settings.load(settings.open_settings(ini)).threshold == 0.5


@pytest.mark.parametrize("value", ["abc", "0,5,1", "1,000.5", "nan"])
def test_a_threshold_that_does_not_read_names_the_setting_and_the_file(tmp_path, caplog, value):
    """A value that is no number gives the default, and the log says which setting of which
    file, and that the default is used (it was replaced without a word)."""
    from app import settings

    ini = tmp_path / "t.ini"
    ini.write_text(f"[General]\nthreshold={value}\n", encoding="utf-8")
    prefs = settings.load(settings.open_settings(ini))
    assert prefs.threshold == settings.Preferences().threshold
    (record,) = [r for r in caplog.records if r.name == "tingxie.app.settings"]
    assert "threshold" in record.message and str(ini) in record.message
    assert "default" in record.message


def test_hand_edited_watch_folders_drop_only_the_bad_entries(tmp_path):
    """A watch entry with "name": null stopped the app at start-up (an AttributeError)."""
    import json

    from app import settings

    store = settings.open_settings(tmp_path / "t.ini")
    good = {"folder": "/tmp/in", "formats": ["srt"], "out": "", "name": "{stem}"}
    bad = [{**good, "name": None}, {**good, "folder": 3}, {**good, "out": ["x"]}, 5, "x"]
    store.setValue("watch_folders", json.dumps([*bad, good]))
    (spec,) = settings.load(store).watch_folders
    assert (spec.folder, spec.formats) == ("/tmp/in", ("srt",))


def test_preferences_that_cannot_be_saved_say_so(qtbot, tmp_path):
    from app import settings

    (tmp_path / "t.ini").mkdir()  # a file that cannot be written, whoever runs the test
    prefs = settings.Settings(settings.open_settings(tmp_path / "t.ini"))
    with qtbot.waitSignal(prefs.save_failed, timeout=1000) as failed:
        prefs.set(threshold=0.4)
    assert failed.args == [str(tmp_path / "t.ini")]
    assert prefs.prefs.threshold == 0.4  # held while the app runs


def test_a_data_folder_that_cannot_be_made_is_said_not_a_traceback(qapp, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QMessageBox

    from app.main import main

    (tmp_path / "afile").write_text("in the way", encoding="utf-8")
    monkeypatch.setenv("TINGXIE_DATA_DIR", str(tmp_path / "afile" / "data"))
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda _p, _t, text: shown.append(text))
    assert main(["tingxie"]) == 1
    assert len(shown) == 1 and str(tmp_path / "afile" / "data") in shown[0]
    assert "TINGXIE_DATA_DIR" in shown[0]


def test_recordings_go_beside_the_store(monkeypatch, tmp_path):
    from app import settings

    monkeypatch.setenv("TINGXIE_DATA_DIR", str(tmp_path))
    assert settings.default_recordings_dir() == tmp_path / "recordings"


def test_qt_binding_does_not_leak_none_references(qapp):
    """PySide6 6.12.0 dropped a reference to None on every void call: Python < 3.12 then
    aborts ('none_dealloc') after a few thousand calls — a recording would crash the app."""
    import sys

    from PySide6.QtGui import QTextCharFormat, QTextCursor, QTextDocument

    fmt = QTextCharFormat()
    cursor = QTextCursor(QTextDocument())
    before = sys.getrefcount(None)
    for _ in range(2000):
        fmt.setFontItalic(True)
        cursor.insertText("字", fmt)
    assert sys.getrefcount(None) - before > -100
