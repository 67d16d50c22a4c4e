"""Fonts that render Chinese everywhere.

The installer provides Noto Sans CJK (fonts-noto-cjk in packaging/debian-packages.txt); naming it
first means Qt never falls back to a Latin-only font that draws boxes for Hanzi. The other names
cover macOS and Windows.
"""

from __future__ import annotations

from PySide6.QtGui import QFont

__all__ = ["CJK_FAMILIES", "cjk_font"]

CJK_FAMILIES = [
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "PingFang SC",
    "Microsoft YaHei",
    "WenQuanYi Micro Hei",
    "sans-serif",
]


def cjk_font(point_size: int | None = None) -> QFont:
    font = QFont()
    font.setFamilies(CJK_FAMILIES)
    if point_size is not None:
        font.setPointSize(point_size)
    return font
