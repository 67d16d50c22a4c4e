"""Convert a large fp32 checkpoint to the half precision it runs in, into the weights cache
(engine.model). Run in a child process by the first load of such a checkpoint: loading fp32
weights into a half-precision model holds both and leaves the freed fp32 memory in the heap
(the full-size XLSR-53: 2.2 GB peak, 1.0 GB still held after the load, against 0.4 GB for a load
of the converted copy), memory a child gives back when it ends and the caller would keep."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Write SOURCE's weights in DTYPE into FOLDER: 0 when the copy is kept, engine.model's
    NOT_KEPT when the cache could not hold it, 2 when the checkpoint did not load (its error on
    stderr)."""
    p = argparse.ArgumentParser(prog="python -m engine.convert", description=__doc__)
    p.add_argument("source", type=Path, help="the checkpoint's folder")
    p.add_argument("folder", type=Path, help="where the converted copy goes")
    p.add_argument("--dtype", choices=("bfloat16", "float16"), required=True)
    args = p.parse_args(argv)
    # What keep_converted warns of is what the caller quotes when this ends.
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)

    import torch

    from .model import NOT_KEPT, ctc_model, keep_converted

    try:
        model = ctc_model(args.source, dtype=getattr(torch, args.dtype))
    except Exception as e:  # the caller loads the checkpoint itself and words the error
        print(f"error: {args.source}: {e}", file=sys.stderr)
        return 2
    return 0 if keep_converted(model, args.folder) else NOT_KEPT


if __name__ == "__main__":
    sys.exit(main())
