"""The frame discriminator (MCM App. C, after StyleGAN-T and ADD): a frozen feature backbone,
one light trainable head per feature level judging patches, text-conditioned by projection.

Backbones:
- `DinoBackbone`: DINOv2 ViT-S/14 through `transformers` (layers 2, 5, 8, 11), for real teachers.
- `VAEEncoderBackbone`: for the synthetic world, the teacher's own frozen VAE encoder, one
  feature map per down block. Why it is fair: it is part of the teacher the student already
  has, it was trained only to reconstruct frames (never on attribute labels), and it shares
  no weights or data labels with the evaluator that scores the results. DINOv2 cannot be
  downloaded here, and a random frozen net gives the heads too little to work with.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VAEEncoderBackbone(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.encoder = copy.deepcopy(vae.encoder).requires_grad_(False).eval()
        self.channels = [block.resnets[-1].conv2.out_channels for block in self.encoder.down_blocks]

    def train(self, mode: bool = True):
        return super().train(False)  # frozen: GroupNorm statistics never change either

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.encoder.conv_in(images)
        features = []
        for block in self.encoder.down_blocks:
            for resnet in block.resnets:
                x = resnet(x, None)
            features.append(x)  # before the block's downsampler: the finest map of each level
            if block.downsamplers is not None:
                for down in block.downsamplers:
                    x = down(x)
        return features


class DinoBackbone(nn.Module):
    """Frozen DINOv2 features at the given layers as (N, C, H/14, W/14) maps."""

    def __init__(
        self, model_or_path="facebook/dinov2-small", layers=(2, 5, 8, 11), image_size: int = 224
    ):
        super().__init__()
        from transformers import Dinov2Model

        model = (
            Dinov2Model.from_pretrained(model_or_path)
            if isinstance(model_or_path, str)
            else model_or_path
        )
        self.model = model.requires_grad_(False).eval()
        self.layers, self.image_size = tuple(layers), image_size
        self.channels = [model.config.hidden_size] * len(self.layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):
        return super().train(False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = F.interpolate(
            (images + 1) / 2,
            size=(self.image_size, self.image_size),
            mode="bilinear",
            align_corners=False,
        )
        hidden = self.model(
            pixel_values=(x - self.mean) / self.std, output_hidden_states=True
        ).hidden_states
        side = self.image_size // self.model.config.patch_size
        maps = []
        for layer in self.layers:
            tokens = hidden[layer + 1][
                :, 1 + getattr(self.model.config, "num_register_tokens", 0) :
            ]
            maps.append(tokens.transpose(1, 2).reshape(tokens.shape[0], -1, side, side))
        return maps


class PatchHead(nn.Module):
    """Conv head on one feature map; logit per patch = w·h + ⟨proj(text), h⟩ / √width."""

    def __init__(self, channels: int, text_dim: int, width: int = 64):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, 1, 1),
            nn.GroupNorm(8, width),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, width, 1),
            nn.LeakyReLU(0.2),
        )
        self.out = nn.Conv2d(width, 1, 1)
        self.text_proj = nn.Linear(text_dim, width)
        self.width = width

    def forward(self, feature: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        h = self.body(feature)
        conditioned = (h * self.text_proj(text)[:, :, None, None]).sum(
            1, keepdim=True
        ) / self.width**0.5
        return (self.out(h) + conditioned).flatten(1)  # (N, patches)


def frames_at_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 3, H, W) frames scaled by area to (N, 3, size, size), unchanged when already that
    size: the whole-frame head judges them there, and the overlay's box is found there."""
    if images.shape[-2:] != (size, size):
        images = F.interpolate(images, size=(size, size), mode="area")
    return images


class WholeFrameHead(nn.Module):
    """A small CNN over the frame's pixels down to an 8×8 map, flattened into one judgement of
    the whole frame, text-conditioned by projection as PatchHead is. A star's points are a
    property of the whole object; patch heads, averaged, did not rank outlines at all
    (docs/cleanliness.md, "Can any of our discriminators see an outline?").

    With `box` (top, bottom, left, right in the pixels of a `size` frame) it judges only that
    crop: the place of a fixed overlay such as a stock watermark (`train.overlay`), so the head
    has nothing else of the frame to pay for."""

    def __init__(self, text_dim: int, size: int, width: int = 64, box=None):
        super().__init__()
        self.size, self.box = size, tuple(box) if box else None
        h, w = (box[1] - box[0], box[3] - box[2]) if box else (size, size)
        layers = [nn.Conv2d(3, width, 3, 1, 1), nn.GroupNorm(8, width), nn.LeakyReLU(0.2)]
        while max(h, w) > 8:
            layers += [nn.Conv2d(width, width, 3, 2, 1), nn.GroupNorm(8, width), nn.LeakyReLU(0.2)]
            h, w = (h + 1) // 2, (w + 1) // 2
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * h * w, width))
        self.act = nn.LeakyReLU(0.2)
        self.out = nn.Linear(width, 1)
        self.text_proj = nn.Linear(text_dim, width)
        self.width = width

    def forward(self, images: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        images = frames_at_size(images, self.size)
        if self.box:
            top, bottom, left, right = self.box
            images = images[..., top:bottom, left:right]
        h = self.act(self.body(images))
        return self.out(h) + (h * self.text_proj(text)).sum(1, keepdim=True) / self.width**0.5


class FrameDiscriminator(nn.Module):
    def __init__(
        self,
        backbone: nn.Module,
        text_dim: int,
        width: int = 64,
        whole_frame_size: int = 0,
        whole_frame_box=None,
    ):
        """`whole_frame_size` > 0 adds a WholeFrameHead on the pixels of frames that size (on
        the crop `whole_frame_box` only, when given)."""
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleList(PatchHead(c, text_dim, width) for c in backbone.channels)
        if whole_frame_size:
            self.heads.append(
                WholeFrameHead(text_dim, whole_frame_size, width, box=whole_frame_box)
            )

    def trainable_state_dict(self) -> dict:
        """The heads only: the frozen backbone is rebuilt from the teacher or DINOv2."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}

    def load_trainable(self, state: dict, fitting_only: bool = False) -> None:
        """The heads back from `trainable_state_dict`'s form (a head the state lacks keeps its
        weights); with `fitting_only`, a head with one tensor of another shape (a whole-frame
        head built for another crop) keeps all of its own instead of failing."""
        if fitting_only:
            own = self.state_dict()
            head = {k: k.split(".")[1] for k in state}  # "heads.<index>.…"
            misfits = {head[k] for k, v in state.items() if k in own and own[k].shape != v.shape}
            state = {k: v for k, v in state.items() if head[k] not in misfits}
        self.load_state_dict(state, strict=False)

    def forward(
        self, images: torch.Tensor, text: torch.Tensor, per_patch: bool = False
    ) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] and pooled text (N, D) → one realness score per image, or
        every patch's of every level (N, P) with `per_patch` (each patch then meets the hinge's
        margin on its own, as StyleGAN-T's heads do: a local flaw is not averaged away), or
        with a whole-frame head (N, 2): the patches' mean and the whole frame's."""
        features = self.backbone(images)
        patches = torch.cat([head(f, text) for head, f in zip(self.heads, features)], 1)
        scores = patches if per_patch else patches.mean(1)
        if len(self.heads) == len(features):
            return scores
        if per_patch:
            raise ValueError("a whole-frame head is one judgement, not patches: drop per_patch")
        # (N, 2): the whole-frame judgement in its own column meets the hinge's margin on its
        # own; added to the patches' mean, it stayed at chance (docs/cleanliness.md)
        return torch.stack([scores, self.heads[-1](images, text)[:, 0]], 1)


def discriminator_loss(real_scores, fake_scores, kind: str = "hinge") -> torch.Tensor:
    """Eq. 5 (hinge), or a WGAN critic loss with scores clipped to [−1, 1]."""
    if kind == "hinge":
        return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()
    if kind == "wgan":
        return fake_scores.clamp(-1, 1).mean() - real_scores.clamp(-1, 1).mean()
    raise ValueError(f"unknown adversarial loss {kind!r}; choose hinge or wgan")


def generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Eq. 4: −D(fake), the same for both losses."""
    return -fake_scores.mean()


def gradient_penalty(
    discriminator: FrameDiscriminator, real: torch.Tensor, text: torch.Tensor
) -> torch.Tensor:
    """R1 on real images: ‖∇ D(real)‖², the penalty the paper omits from Eq. 5 for brevity."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(real, text).sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()
