"""Does a frame discriminator judge outlines? Heads trained offline on one student's frames.

Fakes: a student's 4-step frames on train-split one-object prompts (the last quarter of the
clips held out); reals: the image set's clean stills with their captions. The backbone is
frozen, so its maps are computed once and the heads (hinge + R1 on the maps) train on them.
Read on held-out frames: real vs fake (AUC), fakes whose outline reads right against wrong,
the score drop of clean stills blurred, or captioned with another shape. docs/cleanliness.md
has the answer ("Can any of our discriminators see an outline?").

    python scripts/probe_discriminator.py --backbone vae --heads patch deep
    python scripts/probe_discriminator.py --backbone unet --heads patch deep
    python scripts/probe_discriminator.py --backbone unet --heads patch --blur-negatives
    python scripts/probe_discriminator.py --backbone pixels --heads deep --shape-classifier
    python scripts/probe_discriminator.py --backbone pixels --heads whole --mismatch-negatives
    python scripts/probe_discriminator.py --backbone pixels --heads whole --mismatch-negatives \
        --save-whole-head runs/students/mcm-laion-whole-head

The last one also writes a copy of the student's folder whose discriminator has the trained
whole-frame head added (`distill --adv-whole-frame --init-from` that folder starts from it).

Every head's row also splits the fakes by the asked shape (a frame whose outline reads wrong is
mostly an asked star or cross: right against wrong across all shapes mixes shapes), and gives
the object's area and place in right and wrong frames beside the clean stills'.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil

import cv2
import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from mcm_demo.catalog import Catalog
from mcm_demo.data.world import mismatched_captions, to_model_images, world_stills
from mcm_demo.embedded.world import SHAPES
from mcm_demo.embedded.world.grammar import parse_caption, sample_scene
from mcm_demo.metrics.cleanliness import object_masks, outline_reading
from mcm_demo.train.discriminator import PatchHead, VAEEncoderBackbone, discriminator_loss
from mcm_demo.train.discriminator import WholeFrameHead as TrainingWholeFrameHead
from mcm_demo.video_io import to_uint8

BLURS = (0.7, 1.2, 2.0)


class DeepHead(PatchHead):
    """Four 3×3 convolutions (the first `down` with stride 2), then PatchHead's projection."""

    def __init__(self, channels: int, text_dim: int, width: int = 64, down: int = 0):
        super().__init__(channels, text_dim, width)
        layers = [nn.Conv2d(channels, width, 3, 1, 1), nn.GroupNorm(8, width), nn.LeakyReLU(0.2)]
        for i in range(3):
            layers += [
                nn.Conv2d(width, width, 3, 2 if i < down else 1, 1),
                nn.GroupNorm(8, width),
                nn.LeakyReLU(0.2),
            ]
        self.body = nn.Sequential(*layers)


class WholeFrameHead(DeepHead):
    """DeepHead's convolutions down to an 8×8 map, flattened into one judgement of the whole
    frame (not a mean of patch judgements), with PatchHead's text projection."""

    def __init__(self, channels: int, text_dim: int, size: int, width: int = 64):
        down = max(0, int(np.log2(size / 8)))
        super().__init__(channels, text_dim, width, down)
        side = size // 2**down
        self.whole = nn.Sequential(
            nn.Flatten(), nn.Linear(width * side * side, width), nn.LeakyReLU(0.2)
        )
        self.out = nn.Linear(width, 1)

    def forward(self, feature: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        h = self.whole(self.body(feature))
        conditioned = (h * self.text_proj(text)).sum(1, keepdim=True) / self.width**0.5
        return self.out(h) + conditioned  # (N, 1)


def one_object_scenes(count: int, seed: int):
    rng, scenes = random.Random(seed), []
    while len(scenes) < count:
        scene = sample_scene(rng, split="train")
        if len(scene.objects) == 1:
            scenes.append(scene)
    return scenes


class Maps:
    """The frozen backbone's maps of uint8 stills: the stills themselves (`pixels`: the heads
    are then a small trainable network), the VAE encoder's levels (the shipped
    discriminator's), or the teacher UNet's down-block and mid-block outputs on the still's
    latent noised to t with its caption (the backbone LADD uses)."""

    def __init__(self, pipe, backbone: str, t: int):
        self.pipe, self.backbone, self.t = pipe, backbone, t
        if backbone == "vae":
            self.encoder = VAEEncoderBackbone(pipe.vae)
        else:
            self.taps = []
            for block in pipe.unet.down_blocks:
                block.resnets[-1].register_forward_hook(lambda m, i, o: self.taps.append(o))
            pipe.unet.mid_block.register_forward_hook(lambda m, i, o: self.taps.append(o))

    @torch.no_grad()
    def __call__(self, stills: np.ndarray, captions: list[str]) -> list[torch.Tensor]:
        chunks = []
        for i in range(0, len(stills), 100):
            images = to_model_images(list(stills[i : i + 100]))
            if self.backbone == "pixels":  # no frozen backbone: the heads are the whole network
                chunks.append([images])
                continue
            if self.backbone == "vae":
                chunks.append(self.encoder(images))
                continue
            vae, alphas = self.pipe.vae, self.pipe.scheduler.alphas_cumprod[self.t]
            latents = vae.encode(images).latent_dist.mean * vae.config.scaling_factor
            noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(i))
            noisy = alphas.sqrt() * latents + (1 - alphas).sqrt() * noise
            text = self.pipe.encode_prompt(captions[i : i + 100])
            self.taps.clear()
            self.pipe.unet(noisy[:, :, None], torch.full((len(images),), self.t), text)
            chunks.append([tap.float() for tap in self.taps])
        return [torch.cat(level) for level in zip(*chunks)]


def by_shape(values: np.ndarray, right: np.ndarray, shapes: np.ndarray) -> dict[str, str]:
    """Mean of `values` where the outline reads right and where wrong, per asked shape."""
    out = {}
    for shape in SHAPES:
        r, w = values[(shapes == shape) & right], values[(shapes == shape) & ~right]
        out[shape] = " / ".join(f"{v.mean():+.2f} ({len(v)})" if len(v) else "-" for v in (r, w))
    return out


def object_statistics(real_masks, fake_masks, right) -> dict:
    """The object's area (px) and its centre's distance from the frame's centre (px): clean
    stills, and fakes whose outline reads right / wrong."""

    def stats(masks):
        area = masks.sum((1, 2)).astype(float)
        ys, xs = np.mgrid[: masks.shape[1], : masks.shape[2]]
        cy = (masks * ys).sum((1, 2)) / np.maximum(area, 1)
        cx = (masks * xs).sum((1, 2)) / np.maximum(area, 1)
        off = np.hypot(cy - masks.shape[1] / 2, cx - masks.shape[2] / 2)
        return f"area {np.median(area):.0f}, off-centre {np.median(off):.1f} (n={len(masks)})"

    return {
        "clean stills": stats(real_masks),
        "fakes, outline right": stats(fake_masks[right]),
        "fakes, outline wrong": stats(fake_masks[~right]),
    }


def scores(heads, maps, text, index) -> torch.Tensor:
    return torch.cat(
        [
            torch.cat(
                [h(m[index[i : i + 256]], text[index[i : i + 256]]) for h, m in zip(heads, maps)], 1
            ).mean(1)
            for i in range(0, len(index), 256)
        ]
    )


def save_whole_head(head: WholeFrameHead, student: str, args) -> None:
    """The student's folder copied to `args.save_whole_head`, the head added to its
    discriminator in the training's layout (`train.discriminator.WholeFrameHead`)."""
    shutil.copytree(student, args.save_whole_head, dirs_exist_ok=True)
    path = os.path.join(args.save_whole_head, "discriminator.safetensors")
    state = load_file(path)
    trained = TrainingWholeFrameHead(head.text_proj.in_features, 64)
    linear = f"body.{len(trained.body) - 1}."  # where the training's head keeps its Linear
    # after the patch heads, one per level of the VAE encoder (a whole head there is replaced)
    heads = {k.split(".")[1] for k in state}
    index = len(heads - {k.split(".")[1] for k in state if f".{linear}" in k})
    state = {k: v for k, v in state.items() if not k.startswith(f"heads.{index}.")}
    renamed = {k.replace("whole.1.", linear): v for k, v in head.state_dict().items()}
    trained.load_state_dict(renamed)  # strict: every weight has its place
    state.update({f"heads.{index}.{k}": v.contiguous() for k, v in trained.state_dict().items()})
    save_file(state, path)
    print(f"wrote {args.save_whole_head} (the whole-frame head is heads.{index})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", choices=["vae", "unet", "pixels"], default="vae")
    p.add_argument(
        "--heads", nargs="*", choices=["patch", "deep", "whole"], default=["patch", "deep"]
    )
    p.add_argument("--student", default="mcm-laion", help="a shipped student's name or a folder")
    p.add_argument("--variant", default="laion")
    p.add_argument("--clips", type=int, default=256)
    p.add_argument("--stills", type=int, default=4000)
    p.add_argument("--iters", type=int, default=400)
    p.add_argument(
        "--t", type=int, default=250, help="unet: the noise level the stills are read at"
    )
    p.add_argument(
        "--shape-classifier", action="store_true", help="also probe an auxiliary shape head"
    )
    p.add_argument("--blur-negatives", action="store_true", help="half the fakes: blurred stills")
    p.add_argument(
        "--mismatch-negatives",
        action="store_true",
        help="half the fakes: clean stills captioned with another shape (a matching-aware "
        "discriminator, Reed et al. 2016)",
    )
    p.add_argument(
        "--save-whole-head",
        metavar="DIR",
        help="with --backbone pixels --heads whole: the student's folder copied to DIR, the "
        "trained head added to its discriminator",
    )
    args = p.parse_args()
    if args.save_whole_head and (args.backbone, args.heads) != ("pixels", ["whole"]):
        p.error("--save-whole-head goes with --backbone pixels --heads whole")
    torch.manual_seed(0)
    catalog = Catalog()
    pipe = catalog.load_pipeline("embedded")
    student = (
        args.student
        if os.path.isdir(args.student)
        else catalog.student_folder("embedded", args.student)
    )
    sampler = catalog.use_student(pipe, "embedded", "probed", folder=student)

    # 1. Fakes, and which of their frames read the asked shape.
    scenes = one_object_scenes(args.clips, seed=7)
    captions = [s.caption for s in scenes]
    clips = np.concatenate(
        [
            to_uint8(
                pipe(
                    captions[i : i + 16],
                    sampler=sampler,
                    num_frames=8,
                    num_inference_steps=4,
                    generator=torch.Generator().manual_seed(i),
                )
            )
            for i in range(0, len(scenes), 16)
        ]
    )
    fake_masks = [object_masks(c, s.objects[0].colour, s.background) for c, s in zip(clips, scenes)]
    right = np.array(
        [
            [outline_reading(m).shape == s.objects[0].shape for m in masks]
            for masks, s in zip(fake_masks, scenes)
        ]
    )
    fake_masks = np.concatenate(fake_masks)  # (N·8, H, W)
    pipe.set_adapter(None, merge=True)  # the backbone is the teacher's, as in training

    # 2. The backbone's maps, once.
    maps = Maps(pipe, args.backbone, args.t)
    encode = lambda caps: pipe.encode_prompt(list(caps), return_pooled=True)[1]  # noqa: E731
    stream, held_stream = world_stills(args.variant, 11), world_stills(args.variant, 12)
    reals = [next(stream) for _ in range(args.stills)]
    held = [next(held_stream) for _ in range(400)]
    real_stills, real_caps = np.stack([r[0] for r in reals]), [r[1] for r in reals]
    held_stills, held_caps = np.stack([h[0] for h in held]), [h[1] for h in held]
    fake_stills, fake_caps = clips.reshape(-1, 64, 64, 3), [c for c in captions for _ in range(8)]
    with torch.no_grad():
        real_maps, real_text = maps(real_stills, real_caps), encode(real_caps)
        fake_maps, fake_text = maps(fake_stills, fake_caps), encode(fake_caps)
        held_maps, held_text = maps(held_stills, held_caps), encode(held_caps)
        swapped_text = encode(mismatched_captions(held_caps))
        real_swapped_text = encode(mismatched_captions(real_caps))
        blurred = {
            s: maps(np.stack([cv2.GaussianBlur(x, (0, 0), s) for x in held_stills]), held_caps)
            for s in BLURS
        }
        rng = np.random.default_rng(5)
        negatives = maps(
            np.stack(
                [cv2.GaussianBlur(x, (0, 0), rng.uniform(0.7, 2.0)) for x in real_stills[:1000]]
            ),
            real_caps[:1000],
        )
    split = len(scenes) * 3 // 4 * 8
    asked_shape = np.array([parse_caption(c).objects[0].shape for c in fake_caps])[split:]
    held_masks = np.stack(
        [
            object_masks(x[None], o.colour, parse_caption(c).background)[0]
            for x, c in zip(held_stills, held_caps)
            for o in parse_caption(c).objects[:1]
        ]
    )
    print(json.dumps(object_statistics(held_masks, fake_masks[split:], right.reshape(-1)[split:])))
    held_fakes = torch.arange(split, len(fake_stills))
    held_right = torch.from_numpy(right.reshape(-1)[split:])
    text_dim = pipe.text_encoder.config.hidden_size

    # 3. Each head trained and read.
    for kind in args.heads:
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        levels = [m.shape[1] for m in real_maps]
        heads = nn.ModuleList(
            PatchHead(c, text_dim)
            if kind == "patch"
            else WholeFrameHead(c, text_dim, m.shape[-1])
            if kind == "whole"
            else DeepHead(c, text_dim, down=max(0, int(np.log2(m.shape[-1] / 8))))
            for c, m in zip(levels, real_maps)
        )
        opt = torch.optim.AdamW(heads.parameters(), lr=1e-3, betas=(0.0, 0.99))
        for _ in range(args.iters):
            ri = torch.from_numpy(rng.integers(0, len(reals), 32))
            fi = torch.from_numpy(rng.integers(0, split, 32))
            real_in = [m[ri].requires_grad_(True) for m in real_maps]
            real_score = torch.cat([h(m, real_text[ri]) for h, m in zip(heads, real_in)], 1).mean(1)
            fake_score = scores(heads, fake_maps, fake_text, fi)
            if args.blur_negatives:
                bi = torch.from_numpy(rng.integers(0, len(negatives[0]), 16))
                fake_score = torch.cat([fake_score[:16], scores(heads, negatives, real_text, bi)])
            if args.mismatch_negatives:  # a real still with another shape's caption is fake
                mi = torch.from_numpy(rng.integers(0, len(reals), 16))
                fake_score = torch.cat(
                    [fake_score[:16], scores(heads, real_maps, real_swapped_text, mi)]
                )
            grads = torch.autograd.grad(real_score.sum(), real_in, create_graph=True)
            r1 = sum(g.pow(2).flatten(1).sum(1).mean() for g in grads)
            loss = discriminator_loss(real_score, fake_score) + r1
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            every = torch.arange(len(held))
            real_s = scores(heads, held_maps, held_text, every)
            fake_s = scores(heads, fake_maps, fake_text, held_fakes)
            row = {
                "backbone": args.backbone,
                "heads": kind,
                "auc": float((real_s[:, None] > fake_s[None]).float().mean()),
                "fake outline right": float(fake_s[held_right].mean()),
                "fake outline wrong": float(fake_s[~held_right].mean()),
                "by asked shape: right / wrong (frames)": by_shape(
                    fake_s.numpy(), held_right.numpy(), asked_shape
                ),
                "blur drop": {
                    s: float((real_s - scores(heads, blurred[s], held_text, every)).mean())
                    for s in BLURS
                },
                "another shape's caption drop": float(
                    (real_s - scores(heads, held_maps, swapped_text, every)).mean()
                ),
            }
        print(json.dumps(row), flush=True)
        if args.save_whole_head:
            save_whole_head(heads[0], student, args)

    # 4. A shape classifier on the same maps, taught by the image set's captions (an AC-GAN's
    #    auxiliary head): does what it reads follow the outline, and does blur lower it?
    if args.shape_classifier:
        shape_of = lambda caps: torch.tensor(
            [SHAPES.index(parse_caption(c).objects[0].shape) for c in caps]
        )  # noqa: E731
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        heads = nn.ModuleList(
            DeepHead(c, text_dim, down=max(0, int(np.log2(m.shape[-1] / 8))))
            for c, m in zip([m.shape[1] for m in real_maps], real_maps)
        )
        for h in heads:
            h.out = nn.Conv2d(h.width, len(SHAPES), 1)
        classify = lambda ms, idx: sum(
            h.out(h.body(m[idx])).mean((2, 3)) for h, m in zip(heads, ms)
        )  # noqa: E731
        real_shapes, held_shapes = shape_of(real_caps), shape_of(held_caps)
        opt = torch.optim.AdamW(heads.parameters(), lr=1e-3)
        for _ in range(args.iters):
            ri = torch.from_numpy(rng.integers(0, len(reals), 64))
            loss = nn.functional.cross_entropy(classify(real_maps, ri), real_shapes[ri])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            every = torch.arange(len(held))
            asked = lambda ms, idx, shapes: classify(ms, idx).softmax(1)[
                torch.arange(len(idx)), shapes
            ]  # noqa: E731
            fake_shapes = shape_of(fake_caps)[held_fakes]
            p_fake = asked(fake_maps, held_fakes, fake_shapes)
            pointed = torch.isin(
                held_shapes, torch.tensor([SHAPES.index("star"), SHAPES.index("cross")])
            )
            p_held = asked(held_maps, every, held_shapes)
            row = {
                "backbone": args.backbone,
                "shape classifier: clean stills right": float(
                    (classify(held_maps, every).argmax(1) == held_shapes).float().mean()
                ),
                "p(asked) fake outline right": float(p_fake[held_right].mean()),
                "p(asked) fake outline wrong": float(p_fake[~held_right].mean()),
                "p(asked) drop, stars and crosses blurred": {
                    s: float((p_held - asked(blurred[s], every, held_shapes))[pointed].mean())
                    for s in BLURS
                },
            }
        print(json.dumps(row), flush=True)
        if args.save_whole_head:
            save_whole_head(heads[0], student, args)


if __name__ == "__main__":
    main()
