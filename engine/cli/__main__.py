"""`python -m engine.cli`: tingxie-cli where the console script is not on PATH (a checkout run
without installing, or a virtual environment not activated)."""

import sys

from engine.cli import main

sys.exit(main())
