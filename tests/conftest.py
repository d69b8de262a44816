import sys
from pathlib import Path

# The engine is importable as a top-level package from the repo root (as the CLI uses it).
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
