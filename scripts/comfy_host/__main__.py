"""`python scripts/comfy_host run-workflow ...` (or `python -m comfy_host` with scripts/ on the path)."""
import sys
from pathlib import Path

if not __package__:  # run as a folder: its parent must be importable for the package's own imports
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from comfy_host.cli import main  # noqa: E402

sys.exit(main())
