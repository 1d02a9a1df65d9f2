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
Motion comes only from the 3D part, so shuffling frames destroys it (a test checks this). Trained on every style and every
attribute combination, never used as a training signal for a generator.
"""
from __future__ import annotations

import dataclasses
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from ..toyworld import BACKGROUNDS, COLOURS, MOTIONS, SHAPES, STYLES
from ..toyworld.datasets import SceneStream, to_tensor

HEADS = {"shape": SHAPES, "colour": COLOURS, "background": BACKGROUNDS, "motion": MOTIONS}


def _stage(cin: int, cout: int) -> list[nn.Module]:
    """Two full-resolution 3×3 convolutions, then a 2× max-pool (a VGG stage)."""
    return [nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]


class ToyEvaluator(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, width: int = 48, feature_dim: int = 128):
        super().__init__()
        w = width
        self.frame_encoder = nn.Sequential(
            nn.Conv2d(3, w // 2, 3, 2, 1), nn.SiLU(),
            nn.Conv2d(w // 2, w, 3, 2, 1), nn.GroupNorm(8, w), nn.SiLU(),
            nn.Conv2d(w, w, 3, 1, 1), nn.SiLU())  # → (w, 16, 16)
        self.frame_branch = nn.Sequential(
            nn.Conv2d(w, 2 * w, 3, 2, 1), nn.GroupNorm(8, 2 * w), nn.SiLU(),
            nn.Conv2d(2 * w, feature_dim, 3, 2, 1), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.video_branch = nn.Sequential(
            nn.Conv3d(w, 64, 3, 1, 1), nn.GroupNorm(8, 64), nn.SiLU(),
            nn.Conv3d(64, 96, 3, (1, 2, 2), 1), nn.GroupNorm(8, 96), nn.SiLU(),
            nn.Conv3d(96, feature_dim, 3, (1, 2, 2), 1), nn.SiLU())
        self.video_proj = nn.Linear(2 * feature_dim, feature_dim)
        self.frame_heads = nn.ModuleDict({
            "colour": nn.Linear(feature_dim, len(COLOURS)), "background": nn.Linear(feature_dim, len(BACKGROUNDS)),
            "style": nn.Linear(feature_dim, len(STYLES)), "watermark": nn.Linear(feature_dim, 1)})
        # Shape has its own full-resolution branch on the frame and the frame minus its median
        # colour (the background): VGG stages, global max pooling.
        self.shape_branch = nn.Sequential(*_stage(6, 32), *_stage(32, 64), *_stage(64, 128),
                                          nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(128, len(SHAPES)))
        self.video_heads = nn.ModuleDict({k: nn.Linear(feature_dim, len(v)) for k, v in HEADS.items() if k != "shape"})

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
        out.update({f"frame_{k}": head(frame_features).view(b, f, -1) for k, head in self.frame_heads.items()})
        out.update({k: head(video_features) for k, head in self.video_heads.items()})
        picked = clips[:, :, ::shape_stride]
        frame_shape = self.shape_logits(picked.transpose(1, 2).reshape(-1, 3, h, w)).view(b, picked.shape[2], -1)
        out["frame_shape"], out["shape"] = frame_shape, frame_shape.mean(1)  # a clip's shape: its frames' mean
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


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Blur and noise, so generated clips (softer than renders) are read like real ones."""
    b = x.shape[0]
    blur = torch.rand(b, generator=gen) < 0.3
    if blur.any():
        k = torch.tensor([1.0, 2.0, 1.0]) / 4
        kernel = (k[:, None] * k[None]).expand(3, 1, 3, 3)
        y = x[blur].transpose(1, 2).flatten(0, 1)
        y = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), kernel, groups=3)
        x = x.clone()
        x[blur] = y.view(int(blur.sum()), -1, 3, *y.shape[-2:]).transpose(1, 2)
    noise = (torch.rand(b, 1, 1, 1, 1, generator=gen) < 0.3) * torch.randn(x.shape, generator=gen) * 0.06
    return (x + noise).clamp(-1, 1)


@dataclasses.dataclass
class EvaluatorTrainConfig:
    steps: int = 1000
    batch: int = 24
    lr: float = 1e-3
    seed: int = 0
    run_dir: str = "runs/evaluator"
    save_every: int = 250
    init: str | None = None  # an evaluator folder to start from (a world change re-teaches it, not from scratch)


def _soft_ce(logits: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    return -(probs * F.log_softmax(logits, -1)).sum(-1).mean()


def evaluator_loss(model: ToyEvaluator, clips: torch.Tensor, scenes, styles) -> torch.Tensor:
    out = model(clips, shape_stride=4)  # shape from 2 of 8 frames: the branch is the costly part
    loss = 0.0
    for attr in HEADS:
        target = multi_hot(scenes, attr)
        if attr == "shape":  # cross-entropy against the prompt's shapes (shared when two differ)
            soft = target / target.sum(1, keepdim=True)
            frames = out["frame_shape"]
            loss = loss + _soft_ce(out["shape"], soft) + _soft_ce(frames.flatten(0, 1),
                                                                 soft.repeat_interleave(frames.shape[1], 0))
            continue
        if attr == "background":
            loss = loss + F.cross_entropy(out[attr], target.argmax(1))
        else:
            loss = loss + F.binary_cross_entropy_with_logits(out[attr], target) * len(HEADS[attr]) / 2
        if attr != "motion":  # appearance is also read from every single frame
            logits = out[f"frame_{attr}"]
            t = target[:, None].expand_as(logits)
            loss = loss + (F.cross_entropy(logits.flatten(0, 1), t.argmax(-1).flatten()) if attr == "background"
                           else F.binary_cross_entropy_with_logits(logits, t) * len(HEADS[attr]) / 2)
    style = torch.tensor([STYLES.index(s) for s in styles])
    f = clips.shape[2]
    loss = loss + F.cross_entropy(out["frame_style"].flatten(0, 1), style.repeat_interleave(f))
    watermark = torch.tensor([float(s == "lq") for s in styles])
    loss = loss + F.binary_cross_entropy_with_logits(out["frame_watermark"][..., 0], watermark[:, None].expand(-1, f))
    return loss


def train_evaluator(cfg: EvaluatorTrainConfig, log=print) -> ToyEvaluator:
    from ..teacher.checkpoint import load_state, save_state

    torch.manual_seed(cfg.seed)
    model = ToyEvaluator.from_pretrained(cfg.init) if cfg.init else ToyEvaluator()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    step = (load_state(cfg.run_dir, {"evaluator": model}, opt) or {"step": 0})["step"]
    stream = SceneStream(cfg.seed + 7919 * step, split="all", two_object_prob=0.3)
    gen = torch.Generator().manual_seed(cfg.seed + step)
    t0 = time.time()
    while step < cfg.steps:
        clips, scenes, styles = stream.clips(cfg.batch, style=None)
        x = augment(to_tensor(clips), gen)
        lr = cfg.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + torch.cos(torch.tensor(step / cfg.steps * 3.14159)).item())
        for g in opt.param_groups:
            g["lr"] = lr
        loss = evaluator_loss(model, x, scenes, styles)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0:
            log(f"evaluator step {step}/{cfg.steps} loss {loss.item():.4f} {time.time() - t0:.0f}s")
        if step % cfg.save_every == 0 or step == cfg.steps:
            save_state(cfg.run_dir, step, {"evaluator": model}, opt)
    return model.eval()
