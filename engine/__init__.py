"""Tingxie engine: Mandarin CTC speech recognition, confidence, tuning and export.

Plain Python and torch; never imports Qt, so the CLI, tests and benchmarks use it directly.
"""

import logging

logger = logging.getLogger("tingxie")
logger.addHandler(logging.NullHandler())

__all__ = ["logger"]
