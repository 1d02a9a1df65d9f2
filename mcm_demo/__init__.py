"""mcm-demo: few-step text-to-video with Motion Consistency Models.

The top level exports the classes a saved pipeline folder names in its model_index.json.
"""

from .embedded.unet import UNet3DWithFramePositions
from .pipeline import PipelineInputError, TextToVideoPipeline

__all__ = ["TextToVideoPipeline", "PipelineInputError", "UNet3DWithFramePositions"]
