"""Per-step previews that cost next to nothing: the denoised latent as RGB without the VAE.

The page shows the denoised estimate of every step. The full VAE decoder costs as much as a
UNet call on the embedded teacher (docs/performance.md), so previews go through a cheap
decoder instead and only the final frames come from the VAE:

- `TinyDecoder`: a few convolutions on the latent grid and a pixel shuffle, distilled from
  the embedded teacher's VAE decoder (`python -m mcm_demo train preview`; `weights/preview`).
- `LinearPreview`: one 1×1 convolution latent → RGB, fitted by least squares on latents
  the VAE encoded and the images they came from (area-downsampled to the latent grid), then
  enlarged to the clip's size. For a VAE without a tiny decoder it is fitted when first
  needed from smooth colour fields (`fit_to_vae`); on the embedded teacher it read colour
  far worse than the tiny decoder (docs/performance.md).
- `TinyPreview`: a distilled tiny decoder in diffusers' `AutoencoderTiny` format, for the
  real teachers (`madebyollin/taesd`, the public one for SD-family latents).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file


def _frames(rgb: torch.Tensor, b: int, f: int) -> np.ndarray:
    """(B·F, 3, H, W) in [-1, 1] → (B, F, H, W, 3) floats in [0, 1]."""
    rgb = (rgb.float() / 2 + 0.5).clamp(0, 1)
    return rgb.view(b, f, 3, *rgb.shape[2:]).permute(0, 1, 3, 4, 2).cpu().numpy()


class TinyDecoder(torch.nn.Module):
    """Scaled latents (B, C, F, h, w) → frames (B, F, h·scale, w·scale, 3) in [0, 1].

    All the convolutions run on the latent grid (a 64 px clip's 16×16), where pixels are 16×
    fewer; a pixel shuffle lays out each latent pixel's scale×scale block, and one 3×3
    convolution at full size smooths the block seams."""

    def __init__(self, latent_channels: int = 4, scale: int = 4, width: int = 64):
        super().__init__()
        self.config = {"latent_channels": latent_channels, "scale": scale, "width": width}
        conv = torch.nn.Conv2d
        self.body = torch.nn.Sequential(
            conv(latent_channels, width, 3, padding=1),
            torch.nn.ReLU(),
            conv(width, width, 3, padding=1),
            torch.nn.ReLU(),
            conv(width, width, 3, padding=1),
            torch.nn.ReLU(),
            conv(width, 3 * scale * scale, 1),
            torch.nn.PixelShuffle(scale),
        )
        self.smooth = conv(3, 3, 3, padding=1)

    def decode(self, flat: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) scaled latents → (N, 3, H, W) in [-1, 1] (what training fits)."""
        x = self.body(flat)
        return x + self.smooth(x)

    @torch.no_grad()
    def forward(self, latents: torch.Tensor) -> np.ndarray:
        b, c, f, h, w = latents.shape
        flat = latents.transpose(1, 2).reshape(b * f, c, h, w).to(self.smooth.weight)
        return _frames(self.decode(flat), b, f)

    def save(self, path: str) -> None:
        state = {k: v.detach().half().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, path, metadata={k: str(v) for k, v in self.config.items()})

    @classmethod
    def load(cls, path: str) -> TinyDecoder:
        from safetensors import safe_open

        with safe_open(path, "pt") as f:
            config = {k: int(v) for k, v in f.metadata().items()}
        decoder = cls(**config)
        decoder.load_state_dict({k: v.float() for k, v in load_file(path).items()})
        return decoder.eval()


class LinearPreview(torch.nn.Module):
    """Scaled latents (B, C, F, h, w) → frames (B, F, h·scale, w·scale, 3) in [0, 1]."""

    def __init__(self, latent_channels: int, scale: int):
        super().__init__()
        self.scale = scale
        self.proj = torch.nn.Conv2d(latent_channels, 3, 1)

    @torch.no_grad()
    def forward(self, latents: torch.Tensor) -> np.ndarray:
        b, c, f, h, w = latents.shape
        flat = latents.transpose(1, 2).reshape(b * f, c, h, w).to(self.proj.weight)
        return _frames(
            F.interpolate(self.proj(flat), scale_factor=self.scale, mode="bilinear"), b, f
        )

    def save(self, path: str) -> None:
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, path, metadata={"scale": str(self.scale)})

    @classmethod
    def load(cls, path: str) -> LinearPreview:
        from safetensors import safe_open

        with safe_open(path, "pt") as f:
            scale = int(f.metadata()["scale"])
        state = load_file(path)
        preview = cls(state["proj.weight"].shape[1], scale)
        preview.load_state_dict(state)
        return preview.eval()


@torch.no_grad()
def fit_linear_preview(vae, images: np.ndarray, batch: int = 64) -> LinearPreview:
    """Least squares from the VAE's scaled latents of uint8 `images` (N, H, W, 3) to the
    images area-averaged onto the latent grid (in [-1, 1])."""
    xs, ys = [], []
    for start in range(0, len(images), batch):
        x = torch.from_numpy(images[start : start + batch]).permute(0, 3, 1, 2).float()
        x = x.div(127.5).sub(1).to(vae.device, vae.dtype)
        z = vae.encode(x).latent_dist.mode().float() * vae.config.scaling_factor
        target = F.adaptive_avg_pool2d(x.float(), z.shape[-2:])
        xs.append(z.permute(0, 2, 3, 1).flatten(0, 2).cpu())
        ys.append(target.permute(0, 2, 3, 1).flatten(0, 2).cpu())
    z, y = torch.cat(xs).double(), torch.cat(ys).double()
    design = torch.cat([z, torch.ones(len(z), 1, dtype=z.dtype)], 1)
    solution = torch.linalg.lstsq(design, y).solution  # (C + 1, 3)
    scale = images.shape[1] // z_side(vae, images.shape[1])
    preview = LinearPreview(z.shape[1], scale)
    preview.proj.weight.data = solution[:-1].T.float()[..., None, None].contiguous()
    preview.proj.bias.data = solution[-1].float()
    return preview.eval()


def z_side(vae, side: int) -> int:
    return side // 2 ** (len(vae.config.block_out_channels) - 1)


def colour_fields(count: int, side: int, seed: int = 0) -> np.ndarray:
    """Smooth random colour images (N, side, side, 3) uint8: a VAE's latents of these span its
    colours, which is all a linear preview can show (used when no image set is at hand)."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.uniform(0, 255, (count, 3, 4, 4)).astype(np.float32))
    fields = F.interpolate(coarse, size=(side, side), mode="bicubic", align_corners=True)
    return fields.clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy()


def fit_to_vae(vae, side: int = 128, count: int = 32) -> LinearPreview:
    """A linear preview for a VAE whose training images are not at hand (a real teacher)."""
    return fit_linear_preview(vae, colour_fields(count, side), batch=8)


class TinyPreview(torch.nn.Module):
    """A diffusers `AutoencoderTiny` (TAESD) as a preview decoder: it decodes the UNet's scaled
    latents directly (its scaling factor is 1) into [-1, 1] images."""

    def __init__(self, tiny):
        super().__init__()
        self.tiny = tiny.eval()

    @torch.no_grad()
    def forward(self, latents: torch.Tensor) -> np.ndarray:
        b, c, f, h, w = latents.shape
        flat = latents.transpose(1, 2).reshape(b * f, c, h, w)
        return _frames(self.tiny.decode(flat.to(self.tiny.device, self.tiny.dtype)).sample, b, f)
