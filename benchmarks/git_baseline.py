"""One module of the pack as it was at a git revision, loaded beside today's engine: the baselines that
benchmarks measure in the same run as today's code (the prior before it became a package, the renderer before
the stretched-surface redraw). The old module imports today's siblings, so it must use only stable ones."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def module_at(revision: str, path: str, package: str) -> ModuleType:
    """The file `path` (relative to the repository) at git `revision`, imported as a module of `package`.
    Raises subprocess.CalledProcessError where this checkout does not hold it (a shallow clone), OSError without
    git."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:{path}"], check=True, capture_output=True,
                            text=True).stdout
    file = Path(tempfile.mkdtemp()) / Path(path).name
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(f"{package}._at_{revision}_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = package
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
