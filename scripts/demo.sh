#!/usr/bin/env bash
# The main job: run workflows/animate_still.json in a real ComfyUI host on a picture (default: the
# shipped sample) and write the looping WebP and MP4 to a folder (default: output/demo).
# Usage: bash scripts/demo.sh [PICTURE] [OUTPUT_DIR]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
picture="$(realpath "${1:-$root/samples/dandelion.jpg}")"
out="$(realpath -m "${2:-$root/output/demo}")"
bash "$root/scripts/bootstrap.sh"
exec "${GID_VENV:-$root/.venv}/bin/python" "$root/scripts/comfy_host" run-workflow \
  "$root/workflows/animate_still.json" --pack "$root" --input-image "$picture" --out "$out"
