"""The README's before/after gallery, made by the shipped workflows on a real ComfyUI host.

    .venv/bin/python scripts/readme_gallery.py [--size 224] [--frames 30] [--fps 15] [--quality 50] [--only NAME ...]

Each entry runs one file of workflows/ (as shipped, with the listed inputs changed, and shortened to --frames at
--fps) on a still shrunk to --size pixels on its long side. Its Save Loop WebP (near-lossless; the workflow's MP4
saver is left out) is re-encoded as a lossy WebP at --quality, a tenth of the size, as web/docs/media/NAME.webp; the
still is kept as web/docs/media/STILL.jpg. The README and the node help pages (which ComfyUI serves from web/docs)
show them from there. Prints each file's size; the whole gallery should stay within a few hundred KB.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageSequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from comfy_host import ComfyHost, workflow_to_api  # noqa: E402
from comfy_host.server import default_host_dir  # noqa: E402

OUT = REPO / "web" / "docs" / "media"
DANDELION = REPO / "samples" / "dandelion.jpg"
# name -> (workflow, still, {node title or type: {input: value}}); inputs changed from the shipped values
GALLERY = {
    "dandelion": ("animate_still.json", DANDELION, {}),
    "forest_stream": ("animate_still.json", REPO / "samples" / "gallery" / "forest_stream.jpg",
                      {"GID_PredictSpectralVolume": {"preset": "water ripples"}}),
    "autumn_meadow": ("animate_still.json", REPO / "samples" / "gallery" / "autumn_meadow.jpg",
                      {"GID_PredictSpectralVolume": {"preset": "foliage"}}),
    "dandelion_magnified": ("magnify_and_slowmo.json", DANDELION, {}),
    # the shipped 30 px pull is meant for its 768 px picture: the same share of this one
    "dandelion_pull": ("interactive_dynamics.json", DANDELION, {"GID_InteractiveDynamics": {
        "actions": '[{"type": "pull", "at": [0.15, 0.6], "pull": [10, 0], "release_s": 0}]'}}),
}


def shrunk_still(path: Path, long_side: int, target: Path) -> Path:
    with Image.open(path) as im:
        im = im.convert("RGB")
        scale = long_side / max(im.size)
        size = (round(im.width * scale / 8) * 8, round(im.height * scale / 8) * 8)
        im.resize(size, Image.LANCZOS).save(target, quality=85)
    return target


def lossy_webp(data: bytes, target: Path, fps: float, quality: int) -> None:
    with Image.open(io.BytesIO(data)) as im:
        frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(im)]
    frames[0].save(target, save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0,
                   quality=quality, method=6)


def prompt_for(host: ComfyHost, workflow: str, picture: str, changes: dict, frames: int, fps: float
               ) -> tuple[dict, str]:
    """The shipped workflow as an API prompt on `picture`, shortened, with one WebP Save Loop; (prompt, its id)."""
    prompt = workflow_to_api(json.loads((REPO / "workflows" / workflow).read_text()), host.object_info())
    savers = [i for i, n in prompt.items() if n["class_type"] == "GID_SaveLoop"]
    webp = next(i for i in savers if prompt[i]["inputs"]["format"] == "webp")
    for other in savers:
        if other != webp:
            del prompt[other]
    prompt[webp]["inputs"]["filename_prefix"] = "gallery/loop"
    for node in prompt.values():
        node["inputs"].update(changes.get(node["class_type"], {}))
        if node["class_type"] == "LoadImage":
            node["inputs"]["image"] = picture
        if node["class_type"] in ("GID_MotionTexture", "GID_InteractiveDynamics"):
            node["inputs"].update(frames=frames, fps=fps)
    return prompt, webp


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=224, help="long side of the stills (pixels)")
    parser.add_argument("--frames", type=int, default=30, help="frames per loop")
    parser.add_argument("--fps", type=float, default=15.0, help="frame rate (the workflows' 30 fps doubles the size)")
    parser.add_argument("--only", nargs="+", choices=list(GALLERY), help="make only these entries again")
    parser.add_argument("--quality", type=int, default=50, help="quality of the lossy WebPs (Pillow's 0..100)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gid-gallery-") as work, \
            ComfyHost(default_host_dir(), REPO, Path(work)) as host:  # started here, stopped on the way out
        total, stills = 0, {}
        for name, (workflow, still, changes) in GALLERY.items():
            if args.only and name not in args.only:
                continue
            if still not in stills:
                before = shrunk_still(still, args.size, OUT / f"{still.stem}.jpg")
                stills[still] = host.add_input_file(before)
                total += before.stat().st_size
            picture = stills[still]
            prompt, saver = prompt_for(host, workflow, picture, changes, args.frames, args.fps)
            entry = host.run(prompt, timeout=900)
            info = next(f for f in host.output_files(entry) if f["node_id"] == saver)
            after = OUT / f"{name}.webp"
            lossy_webp(host.download(info), after, args.fps, args.quality)
            total += after.stat().st_size
            print(f"{name}: {workflow} -> {after.relative_to(REPO)} ({after.stat().st_size / 1024:.0f} KB)")
        print(f"gallery: {total / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
