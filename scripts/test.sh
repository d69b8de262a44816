#!/usr/bin/env bash
# The whole test suite: engine and tooling unit tests first (fast), then the pack inside a real ComfyUI 0.3.75
# host, then the browser extension in headless Chromium against that host.
# Installs what it needs on first use (scripts/bootstrap.sh). Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh" --browser
cd "$root"
exec "${GID_VENV:-$root/.venv}/bin/python" -m pytest tests/engine tests/nodes tests/tooling tests/host tests/browser -p no:cacheprovider "$@"
