#!/usr/bin/env bash
# Creates the project's virtual environment (.venv) with torch and a real ComfyUI 0.3.75 host (.comfyui/).
# Idempotent: a second run only checks. Used by scripts/demo.sh, scripts/test.sh and .ci/run.
# --browser also installs Debian's chromium for the browser tests (Playwright drives it; it never downloads one).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${GID_VENV:-$root/.venv}"
python_bin="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  echo "[bootstrap] creating virtual environment $venv"
  "$python_bin" -m venv "$venv"
fi
py="$venv/bin/python"
stamp="$venv/.gid-bootstrap-$(cat "$root/requirements.txt" "$root/scripts/host-requirements.txt" "$root/scripts/bootstrap.sh" | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "[bootstrap] installing packages (torch comes from the local cache where there is one)"
  "$py" -m pip install --quiet --upgrade pip
  # ComfyUI 0.3.75 imports torchvision at start; these two are a matched pair.
  "$py" -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
  "$py" -m pip install --quiet -r "$root/requirements.txt" -r "$root/scripts/host-requirements.txt"
  touch "$stamp"
fi
if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "[bootstrap] installing Debian's chromium for the browser tests"
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
"$py" "$root/scripts/install_host.py"
