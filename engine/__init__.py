"""Tingxie engine: Mandarin CTC speech recognition, confidence, tuning and export.

Plain Python and torch; never imports Qt, so the CLI, tests and benchmarks use it directly.
"""

import logging
import os

# oneDNN, which runs torch's bf16 matrix products and convolutions on a CPU, keeps every
# primitive it builds (one per input shape, each holding megabytes) in two caches of 1024
# entries. Chunks cut at pauses come in many lengths, so a long file's peak grew with its
# length (the full-size model, 20 minutes of speech with uneven pauses: 2.2-2.4 GB, against
# 1.3 GB for one minute). Eight entries hold what one forward pass reuses; building the rest
# again cost no measurable time. Read once by torch's libraries, so this must run before torch
# is imported (importing `engine` first does it); a value the user set is kept.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "8")
os.environ.setdefault("LRU_CACHE_CAPACITY", "8")

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
