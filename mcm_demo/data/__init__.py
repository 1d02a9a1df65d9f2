"""Video and image sets from disk, in the layouts people already have (DESIGN §2).

`--videos PATH` names a video set: a WebVid CSV, a plain `path,caption` CSV, a JSONL, a folder
holding one such captions file, or WebDataset tar shards as video2dataset writes them (a .tar,
a folder of them, or a brace pattern). `--images PATH` names an image set: a folder of images
with optional sidecar `.txt` captions, or img2dataset's shards. Clips are decoded with PyAV in
DataLoader workers; a file that cannot be used is skipped and counted, never fatal. The
synthetic world is one more source (`world.py`) and stays the default.
"""

from .decode import ClipSpec, SampleSkipped
from .index import DataSetError
from .sets import (
    ImageSet,
    SkipCounts,
    VideoSet,
    open_image_set,
    open_video_set,
)

__all__ = [
    "ClipSpec",
    "DataSetError",
    "ImageSet",
    "SampleSkipped",
    "SkipCounts",
    "VideoSet",
    "open_image_set",
    "open_video_set",
]
