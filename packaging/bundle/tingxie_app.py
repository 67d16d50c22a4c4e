"""The bundle's one program: `tingxie` starts the app, `tingxie-cli` (a link to the same file)
the command line — one analysis, one copy of everything."""

import sys
from pathlib import Path

if __name__ == "__main__":
    if Path(sys.argv[0]).name.startswith("tingxie-cli"):
        from engine.cli import main
    else:
        from app.main import main
    sys.exit(main())
