"""Tingxie engine: Mandarin CTC speech recognition, confidence, tuning and export.

Plain Python and torch; never imports Qt, so the CLI, tests and benchmarks use it directly.
"""

import logging

logger = logging.getLogger("tingxie")
logger.addHandler(logging.NullHandler())

__all__ = ["logger", "version"]


def version() -> str:
    """Tingxie's version as installed ("unknown" in a source tree that was not installed)."""
    from importlib import metadata

    try:
        return metadata.version("tingxie")
    except metadata.PackageNotFoundError:
        return "unknown"
