from __future__ import annotations

from engine.normalize import NormalizeOptions, describe, is_simplified_vocab, normalize_text


def test_default_normalization_of_a_messy_transcript():
    text = "  今天，天氣很好！ＡＢＣ１２３　“對吧”…  "
    assert normalize_text(text) == "今天天气很好abc123对吧"


def test_each_step_can_be_switched_off():
    opts = NormalizeOptions(
        half_width=False,
        remove_punctuation=False,
        remove_spaces=False,
        lowercase=False,
        to_simplified=False,
    )
    assert normalize_text("漢語，ＡＢ  c", opts) == "漢語，ＡＢ c"
    assert normalize_text("漢語", NormalizeOptions(to_simplified=False)) == "漢語"
    assert normalize_text("你 好", NormalizeOptions(remove_spaces=False)) == "你 好"
    assert normalize_text("ＡＢ", NormalizeOptions(half_width=False, lowercase=False)) == "ＡＢ"


def test_describe_lists_only_active_steps():
    assert len(describe(NormalizeOptions())) == 5
    lines = describe(NormalizeOptions(to_simplified=False, lowercase=False))
    assert len(lines) == 3 and not any("Simplified" in line for line in lines)


def test_simplified_vocab_detection():
    assert is_simplified_vocab("的一是不了人我在有他这中大来上国个到说们为")
    assert not is_simplified_vocab("這個國際說們為東車書長門")
    assert is_simplified_vocab("abc")  # no Han characters: converting cannot hurt
