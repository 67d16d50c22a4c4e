"""Entry point of the `tingxie` desktop app."""

from __future__ import annotations

import sys


def main() -> int:
    from PySide6.QtWidgets import QApplication, QLabel

    qt = QApplication.instance() or QApplication(sys.argv)
    label = QLabel("Tingxie 听写 — the desktop app is not built yet; use tingxie-cli.")
    label.show()
    return qt.exec()


if __name__ == "__main__":
    sys.exit(main())
