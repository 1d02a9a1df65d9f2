"""The world's evaluator: one small network that plays CLIPSIM, FVD's I3D, FID's Inception
and a watermark detector at once.

It reads a clip (B, 3, F, 64, 64) in [-1, 1]. A 2D encoder gives per-frame feature maps;
per-frame heads read appearance (colour, background, style, watermark) and give the frame
features of the FID-like score. Shape has a branch of its own: each frame beside the frame
minus its median colour (the background), through VGG stages (two 3×3 convolutions at full
resolution, then max-pooling) and global max pooling — shape lives in a few pixels of edge.
Read from the shared strided encoder with average pooling, shape stayed near chance
(0.3–0.45) while colour was learned at once, and sharing a trunk with the other heads kept
it there too; a clip's shape is the mean of its frames' shape logits. 3D convolutions over
the frame maps read motion; their pooled output is the video feature of the FVD-like score.
Motion comes only from the 3D part, so shuffling frames destroys it (a test checks this). Trained on
every style and every
attribute combination, never used as a training signal for a generator.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from ..embedded.world import BACKGROUNDS, COLOURS, MOTIONS, SHAPES, STYLES

HEADS = {"shape": SHAPES, "colour": COLOURS, "background": BACKGROUNDS, "motion": MOTIONS}


def _stage(cin: int, cout: int) -> list[nn.Module]:
    """Two full-resolution 3×3 convolutions, then a 2× max-pool (a VGG stage)."""
    return [
        nn.Conv2d(cin, cout, 3, 1, 1),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
        nn.Conv2d(cout, cout, 3, 1, 1),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
        nn.MaxPool2d(2),
    ]


class ToyEvaluator(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, width: int = 48, feature_dim: int = 128):
        super().__init__()
        w = width
        self.frame_encoder = nn.Sequential(
            nn.Conv2d(3, w // 2, 3, 2, 1),
            nn.SiLU(),
            nn.Conv2d(w // 2, w, 3, 2, 1),
            nn.GroupNorm(8, w),
            nn.SiLU(),
            nn.Conv2d(w, w, 3, 1, 1),
            nn.SiLU(),
        )  # → (w, 16, 16)
        self.frame_branch = nn.Sequential(
            nn.Conv2d(w, 2 * w, 3, 2, 1),
            nn.GroupNorm(8, 2 * w),
            nn.SiLU(),
            nn.Conv2d(2 * w, feature_dim, 3, 2, 1),
            nn.SiLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.video_branch = nn.Sequential(
            nn.Conv3d(w, 64, 3, 1, 1),
            nn.GroupNorm(8, 64),
            nn.SiLU(),
            nn.Conv3d(64, 96, 3, (1, 2, 2), 1),
            nn.GroupNorm(8, 96),
            nn.SiLU(),
            nn.Conv3d(96, feature_dim, 3, (1, 2, 2), 1),
            nn.SiLU(),
        )
        self.video_proj = nn.Linear(2 * feature_dim, feature_dim)
        self.frame_heads = nn.ModuleDict(
            {
                "colour": nn.Linear(feature_dim, len(COLOURS)),
                "background": nn.Linear(feature_dim, len(BACKGROUNDS)),
                "style": nn.Linear(feature_dim, len(STYLES)),
                "watermark": nn.Linear(feature_dim, 1),
            }
        )
        # Shape has its own full-resolution branch on the frame and the frame minus its median
        # colour (the background): VGG stages, global max pooling.
        self.shape_branch = nn.Sequential(
            *_stage(6, 32),
            *_stage(32, 64),
            *_stage(64, 128),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
            nn.Linear(128, len(SHAPES)),
        )
        self.video_heads = nn.ModuleDict(
            {k: nn.Linear(feature_dim, len(v)) for k, v in HEADS.items() if k != "shape"}
        )

    def shape_logits(self, frames: torch.Tensor) -> torch.Tensor:
        background = frames.flatten(2).median(2).values[..., None, None]
        return self.shape_branch(torch.cat([frames, frames - background], 1))

    def forward(self, clips: torch.Tensor, shape_stride: int = 1) -> dict:
        """`shape_stride` > 1 reads shape from every k-th frame only (training saves time so)."""
        b, _, f, h, w = clips.shape
        maps = self.frame_encoder(clips.transpose(1, 2).reshape(b * f, 3, h, w))
        frame_features = self.frame_branch(maps)
        maps = maps.view(b, f, *maps.shape[1:]).transpose(1, 2)
        v = self.video_branch(maps).mean((3, 4))  # (B, C, F): pool space, keep time for max/mean
        video_features = F.silu(self.video_proj(torch.cat([v.mean(2), v.amax(2)], 1)))
        out = {"frame_features": frame_features.view(b, f, -1), "video_features": video_features}
        out.update(
            {
                f"frame_{k}": head(frame_features).view(b, f, -1)
                for k, head in self.frame_heads.items()
            }
        )
        out.update({k: head(video_features) for k, head in self.video_heads.items()})
        picked = clips[:, :, ::shape_stride]
        frame_shape = self.shape_logits(picked.transpose(1, 2).reshape(-1, 3, h, w)).view(
            b, picked.shape[2], -1
        )
        out["frame_shape"], out["shape"] = (
            frame_shape,
            frame_shape.mean(1),
        )  # a clip's shape: its frames' mean
        return out


def multi_hot(scenes, attribute: str) -> torch.Tensor:
    values = HEADS[attribute]
    target = torch.zeros(len(scenes), len(values))
    for i, s in enumerate(scenes):
        if attribute == "background":
            target[i, values.index(s.background)] = 1
        else:
            for o in s.objects:
                target[i, values.index(getattr(o, attribute))] = 1
    return target
