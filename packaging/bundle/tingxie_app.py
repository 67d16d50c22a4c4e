"""The bundle's one program: `tingxie` starts the app, `tingxie-cli` (a link to the same file)
the command line — one analysis, one copy of everything. Tuning jobs the app starts run here
too (`engine.tune.jobs.child_command`), and the conversion of a large checkpoint's weights on
its first load (`engine.convert`)."""

import sys
from pathlib import Path

if __name__ == "__main__":
    if sys.argv[1:2] == ["engine.tune.child"]:  # a tuning job the app started (no `-m` here)
        from engine.tune.child import main

        sys.exit(main(sys.argv[2:]))
    if sys.argv[1:2] == ["engine.convert"]:  # a large checkpoint's first load (engine.model)
        from engine.convert import main

        sys.exit(main(sys.argv[2:]))
    if Path(sys.argv[0]).name.startswith("tingxie-cli"):
        from engine.cli import main
    else:
        from app.main import main
    sys.exit(main())
