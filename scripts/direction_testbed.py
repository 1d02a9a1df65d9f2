"""A fast testbed for the one word the teacher has not learned: the direction.

    python scripts/direction_testbed.py runs/dir-a --vae runs/x4/export2000/vae [--steps 1000]
    python scripts/direction_testbed.py runs/dir-b --vae ... --resnet-positions   # side by side

A reduced world — squares of six colours on black, moving left, right, up or down, 2,048
low-quality clips — trains the x4 UNet from scratch (frozen x4 text encoder), and every 100
steps prints the denoising loss on 32 unseen clips with their caption and with the direction
flipped and with it turned to the other axis, from the same noise. The run is resumable;
equal losses mean the direction is unused. Printed once first, the yardstick: what predicting
the training clips' mean would score at t=999 on the same 32 clips, grouped by nothing, by
colour, by colour and axis, and by the whole caption.
"""
import argparse
import collections
import dataclasses
import json
import os
import random
import sys
import time

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mcm_demo.models import TEACHER_SIZES, build_noise_schedule, encode_prompts, unet_forward  # noqa: E402
from mcm_demo.teacher.train_unet import UNetTrainConfig, encode_clips, load_latents, train_unet  # noqa: E402
from mcm_demo.toyworld.grammar import COLOURS, ObjectSpec, Scene, parse_caption  # noqa: E402
from mcm_demo.toyworld.render import render_clip  # noqa: E402

DIRECTIONS = ("left", "right", "up", "down")
FLIP = {"left": "right", "right": "left", "up": "down", "down": "up"}
TURN = {"left": "up", "right": "down", "up": "left", "down": "right"}  # the other axis
AXIS = {"left": "x", "right": "x", "up": "y", "down": "y"}


def caption(colour, direction):
    return Scene("black", (ObjectSpec("square", colour, direction),)).caption


def encode(vae, pairs, seeds):
    return encode_clips(vae, np.stack([render_clip(Scene("black", (ObjectSpec("square", c, d),)), "lq", s)
                                       for (c, d), s in zip(pairs, seeds)]))


def build_cache(vae, path, num_clips=2048, seed=0):
    rng, latents, captions = random.Random(seed), [], []
    for start in range(0, num_clips, 64):
        pairs = [(rng.choice(COLOURS), rng.choice(DIRECTIONS)) for _ in range(64)]
        latents.append(encode(vae, pairs, range(start, start + 64)))
        captions += [caption(c, d) for c, d in pairs]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_file({"latents": torch.cat(latents)}, path, metadata={"captions": json.dumps(captions)})


def unseen_clips(vae):
    """The 32 clips every probe scores (seeds the cache never used), with their (colour, direction)."""
    pairs = [(c, d) for c in COLOURS[:4] for d in DIRECTIONS] * 2
    return encode(vae, pairs, range(10_000, 10_000 + len(pairs))), pairs


def probe_captions(pairs):
    """Each clip's caption, with the direction flipped, and with it turned to the other axis."""
    return [[caption(c, change.get(d, d)) for c, d in pairs] for change in ({}, FLIP, TURN)]


def probe_losses(unet, schedule, z, noise, t, texts):
    """The denoising loss on z at timestep t, from the same noise, under each text."""
    ts = torch.full((len(z),), t)
    noisy, target = schedule.add_noise(z, noise, ts), schedule.get_velocity(z, noise, ts)
    return [float((unet_forward(unet, noisy, ts, h) - target).pow(2).mean()) for h in texts]


def mean_predictor_losses(latents, captions, z, pairs):
    """The t=999 loss on z of predicting the mean of the training latents that share a key with
    each clip: with the caption alone (pure noise in), no model can do better than its key's mean."""
    keys = {"nothing": lambda c, d: "", "colour": lambda c, d: c,
            "colour and axis": lambda c, d: c + AXIS[d], "the whole caption": lambda c, d: c + d}
    parsed = [(o.colour, o.motion) for o in (parse_caption(c).objects[0] for c in captions)]
    out = {}
    for name, key in keys.items():
        groups = collections.defaultdict(list)
        for i, (c, d) in enumerate(parsed):
            groups[key(c, d)].append(i)
        means = {k: latents[rows].mean(0) for k, rows in groups.items()}
        out[name] = round(float(torch.stack([(z[j] - means[key(c, d)]).pow(2).mean()
                                             for j, (c, d) in enumerate(pairs)]).mean()), 4)
    return out


def main():
    from diffusers import AutoencoderKL

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--vae", required=True, help="a x4 teacher's vae folder")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--resnet-positions", action="store_true", help="UNet with frame positions in every resnet")
    p.add_argument("--spatial-positions", action="store_true", help="UNet with a learned embedding of place")
    p.add_argument("--high-noise-share", type=float, default=0.0)
    args = p.parse_args()
    vae = AutoencoderKL.from_pretrained(args.vae).eval()
    cache = os.path.join(args.run_dir, "latents.safetensors")
    if not os.path.exists(cache):
        build_cache(vae, cache)
    z, pairs = unseen_clips(vae)
    print("predicting the training mean, grouped by:", mean_predictor_losses(*load_latents(cache), z, pairs))
    size = dataclasses.replace(TEACHER_SIZES["x4"], unet_frame_positions_in_resnets=args.resnet_positions,
                               unet_spatial_positions=args.spatial_positions)
    schedule, text = build_noise_schedule(), None
    for steps in range(100, args.steps + 1, 100):
        t0 = time.time()
        cfg = UNetTrainConfig(steps=steps, run_dir=args.run_dir, object_weight=0, save_every=100,
                              high_noise_share=args.high_noise_share)
        tokenizer, text_encoder, unet = train_unet(cfg, vae, size, log=lambda *a: None)
        unet.eval()
        gen, cells = torch.Generator().manual_seed(0), []
        with torch.no_grad():
            if text is None:  # the text encoder is frozen, so its states hold for the whole run
                text = [encode_prompts(tokenizer, text_encoder, c) for c in probe_captions(pairs)]
            for t in (999, 900, 700):
                losses = probe_losses(unet, schedule, z, torch.randn(z.shape, generator=gen), t, text)
                cells.append(f"t={t} " + "/".join(f"{v:.4f}" for v in losses))
        print(f"step {steps}: loss with caption/direction flipped/turned to the other axis  " + "  ".join(cells)
              + f"  ({time.time() - t0:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
