"""A test-only custom node that reports progress through comfy.utils.ProgressBar, like a long-running pack node.

Loaded into the test host next to the pack (never shipped), so the harness can check that `progress`
websocket events reach a client without depending on the pack's own nodes.
"""
import comfy.utils


class GIDHarnessProgress:
    CATEGORY = "testing/gid harness"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "steps": ("INT", {"default": 4, "min": 1, "max": 1000})}}

    def run(self, images, steps):
        bar = comfy.utils.ProgressBar(steps)
        for _ in range(steps):
            bar.update(1)
        return (images,)


NODE_CLASS_MAPPINGS = {"GIDHarnessProgress": GIDHarnessProgress}
NODE_DISPLAY_NAME_MAPPINGS = {"GIDHarnessProgress": "GID harness progress probe"}
