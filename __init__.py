"""ComfyUI node pack for Generative Image Dynamics (Li, Tucker, Snavely, Holynski, CVPR 2024)."""
from comfy_api.latest import ComfyExtension, io

from .nodes import NODES
from .nodes.comfy_bridge import install_sample_picture, register_model_folder

WEB_DIRECTORY = "./web"

register_model_folder()
install_sample_picture()


class GIDExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)


async def comfy_entrypoint() -> ComfyExtension:
    return GIDExtension()
