"""The module saved pipeline folders name for the embedded UNet.

A teacher folder's model_index.json says `["mcm_demo.models", "UNet3DWithFramePositions"]`, and
diffusers resolves that name from `sys.modules` (so `pipeline` imports this module) and looks
up the component's base class in it (hence `ModelMixin`). The class itself lives in
`embedded/unet.py`.
"""

from diffusers.models.modeling_utils import ModelMixin

from .embedded.unet import UNet3DWithFramePositions

__all__ = ["ModelMixin", "UNet3DWithFramePositions"]
