"""The teacher's acceptance numbers: does a sample follow its held-out prompt?

    python scripts/check_teacher.py [weights/teacher] [--clips 256] [--steps 50] [--guidance 5]
    # minutes: does every word steer?
    python scripts/check_teacher.py runs/x/export --word-probe
    # the most any UNet on this VAE can score
    python scripts/check_teacher.py runs/x/export --vae-ceiling
    # seconds: does each word keep its identity?
    python scripts/check_teacher.py runs/x/export --text-probe
    # minutes: does the UNet draw the shape it is told?
    python scripts/check_teacher.py runs/x/export --shape-probe
    # a minute: does it read the shape word at all?
    python scripts/check_teacher.py runs/x/export --shape-loss-probe
    # a run's kept EMA UNets in the shipped pipeline, one after the other (docs/shape.md)
    python scripts/check_teacher.py --clips 64 --steps 25 \
        --unet runs/shape/unet/ema*/ema_unet.safetensors

Held-out prompts (EVAL_SEED), one clip each, DDIM with CFG; prints per-attribute accuracy
and the watermark rate. `--word-probe` is the early check for a training run: prompts that
differ in one word (colour, shape or motion) are sampled from the same noise, and it prints
how far apart the clips come out per kind of word, and the mean displacement of the object
for "moving left/right/up/down". A word the model ignores gives a difference near 0. It then
measures the denoising loss on real clips with their caption and with its direction word
flipped, from the same noise: equal losses mean the UNet does not use the word at all (a
training problem, not a sampling one). `--vae-ceiling` scores held-out real clips after a
round trip through the folder's VAE: what its latents can carry at all. `--text-probe` reads
the folder's text encoder alone: for each kind of word, the state at that word's position over
every single-object caption, its spread around its word's mean, how far the means lie apart, and
how often a held-out combination's state lies nearest its own word's training mean.
`--shape-probe` reads the shape of the UNet's one-step clean estimate of noised real clips,
with the caption and with its shape word swapped (shape_probe says what the numbers mean).
"""

import argparse
import functools
import time

import numpy as np
import torch
from safetensors.torch import load_file

from mcm_demo.catalog import Catalog
from mcm_demo.embedded.world.grammar import heldout_scenes
from mcm_demo.eval.tables import EVAL_SEED, generate_clips
from mcm_demo.metrics.scores import score_clips
from mcm_demo.pipeline import TextToVideoPipeline

WORD_PAIRS = {
    "colour": (
        "a red square moving left on a black background",
        "a cyan square moving left on a black background",
    ),
    "shape": (
        "a red square moving left on a black background",
        "a red star moving left on a black background",
    ),
    "motion": (
        "a red square moving left on a black background",
        "a red square moving up on a black background",
    ),
}
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}


def outline_weight(mask: torch.Tensor, latent_size: int) -> torch.Tensor:
    """4·m·(1−m) of a render mask (…, H, W) pooled to the latent grid: 1 where the outline
    halves a latent pixel, 0 inside and outside the object."""
    m = torch.nn.functional.adaptive_avg_pool2d(mask, latent_size)
    return 4 * m * (1 - m)


@torch.no_grad()
def same_noise_errors(unet, schedule, latents, t: int, texts, gen) -> list[torch.Tensor]:
    """The squared v-prediction error at timestep `t` under each text state, all from one draw
    of noise: the probes compare captions, so nothing else may differ."""
    from mcm_demo.pipeline import unet_forward

    noise = torch.randn(latents.shape, generator=gen).to(latents.device)
    ts = torch.full((latents.shape[0],), t, device=latents.device)
    noisy, target = (
        schedule.add_noise(latents, noise, ts),
        schedule.get_velocity(latents, noise, ts),
    )
    return [(unet_forward(unet, noisy, ts, text) - target) ** 2 for text in texts]


def object_centroids(clips: np.ndarray) -> np.ndarray:
    """(N, F, 2) x, y of the pixels far from each frame's median (background) colour."""
    c = clips.astype(np.float32)
    background = np.median(c.reshape(*c.shape[:2], -1, 3), axis=2)[:, :, None, None]
    mask = (np.abs(c - background).sum(-1) > 0.45).astype(np.float32)
    yy, xx = np.mgrid[0 : c.shape[2], 0 : c.shape[3]]
    area = mask.sum((2, 3)) + 1e-3
    return np.stack([(mask * xx).sum((2, 3)) / area, (mask * yy).sum((2, 3)) / area], -1)


def displacement(clips: np.ndarray, direction) -> np.ndarray:
    """Per clip: how far the object travelled along `direction` (x, y) from first to last frame."""
    track = object_centroids(clips)
    return (track[:, -1] - track[:, 0]) @ np.asarray(direction, np.float32)


def word_probe(pipe, clips_per_prompt: int, steps: int, guidance: float) -> None:
    from mcm_demo.embedded.world.grammar import parse_caption
    from mcm_demo.embedded.world.render import render_clip

    @functools.cache  # the left-moving red square is every pair's first prompt and a direction's
    def sample(prompt):
        return pipe(
            [prompt] * clips_per_prompt,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=torch.Generator().manual_seed(0),
        )

    for kind, (a, b) in WORD_PAIRS.items():
        print(
            f"{kind:7s} word swapped, same noise: mean |Δpixel| "
            f"{np.abs(sample(a) - sample(b)).mean():.3f}"
        )
    for word, direction in DIRECTIONS.items():
        prompt = f"a red square moving {word} on a black background"
        along = displacement(sample(prompt), direction)
        # the same measure on real low-quality clips (the watermark dilutes it: 26 px of travel
        # reads ~16)
        real = displacement(
            np.stack(
                [render_clip(parse_caption(prompt), "lq", i) for i in range(clips_per_prompt)]
            ).astype(np.float32)
            / 255,
            direction,
        )
        print(
            f"moving {word:5s}: displacement along the named direction {along.mean():+5.1f} px "
            f"(real clips {real.mean():+.1f}), in that direction in {np.mean(along > 2):.0%} of "
            "clips"
        )


@torch.no_grad()
def vae_ceiling(vae, count: int) -> None:
    from mcm_demo.embedded.world.datasets import to_tensor
    from mcm_demo.embedded.world.render import render_clip

    scenes = heldout_scenes(count, seed=EVAL_SEED)
    clips = np.stack([render_clip(s, "lq", i) for i, s in enumerate(scenes)])
    frames = to_tensor(clips).transpose(1, 2).flatten(0, 1)
    decoded = torch.cat(
        [vae.decode(vae.encode(f).latent_dist.mode()).sample for f in frames.split(128)]
    )
    round_trip = (
        ((decoded.clamp(-1, 1) + 1) * 127.5)
        .round()
        .byte()
        .view(*clips.shape[:2], 3, *clips.shape[2:4])
    )
    evaluator = Catalog().load_evaluator()
    for name, c in (
        ("real clips", clips),
        ("through the VAE", round_trip.permute(0, 1, 3, 4, 2).numpy()),
    ):
        print(
            f"{name:16s}",
            {k: round(v, 3) for k, v in score_clips(evaluator, c, scenes).accuracy.items()},
        )


@torch.no_grad()
def direction_loss_probe(pipe, timesteps=(999, 900, 700, 500)) -> None:
    from mcm_demo.embedded.config import build_noise_schedule
    from mcm_demo.embedded.world.grammar import parse_caption
    from mcm_demo.embedded.world.render import render_clip
    from mcm_demo.pipeline import encode_prompts, unet_forward
    from mcm_demo.transfer.look import encode_clip

    def latents_of(captions):  # one real clip per caption, render seed = its position
        return torch.cat(
            [
                encode_clip(pipe, render_clip(parse_caption(c), "lq", i))
                for i, c in enumerate(captions)
            ]
        )

    template = "a {} square moving {} on a black background"
    pairs = [
        (template.format(c, d), template.format(c, OPPOSITE[d]))
        for c in ("red", "green", "blue", "yellow")
        for d in OPPOSITE
    ]
    captions, flipped = map(list, zip(*pairs))
    z, b = latents_of(captions), len(captions)
    schedule, gen = build_noise_schedule(), torch.Generator().manual_seed(0)
    text = {
        k: encode_prompts(pipe.tokenizer, pipe.text_encoder, p)
        for k, p in (
            ("caption", captions),
            ("direction flipped", flipped),
            ("no caption", [""] * b),
        )
    }
    pipe.unet.eval()
    for t in timesteps:
        noise, ts = torch.randn(z.shape, generator=gen), torch.full((b,), t)
        noisy, target = schedule.add_noise(z, noise, ts), schedule.get_velocity(z, noise, ts)
        losses = {
            k: float(((unet_forward(pipe.unet, noisy, ts, h) - target) ** 2).mean())
            for k, h in text.items()
        }
        print(f"denoising loss at t={t}: " + ", ".join(f"{k} {v:.4f}" for k, v in losses.items()))
    # What the word is worth: at t=999 the best prediction is the mean clip given the caption,
    # so its loss is the spread around that mean, with the direction known or pooled.
    by_direction = [latents_of([template.format("red", d)] * 96) for d in ("left", "right")]
    pooled = torch.cat(by_direction)
    known = sum(((z - z.mean(0)) ** 2).mean() for z in by_direction) / 2
    unknown = ((pooled - pooled.mean(0)) ** 2).mean()
    print(
        f"best achievable loss at t=999, red squares moving left/right: {unknown:.4f} without "
        "the direction, "
        f"{known:.4f} with it ({1 - known / unknown:.1%} lower)"
    )


@torch.no_grad()
def shape_probe(pipe, timesteps=(900, 800, 700, 600, 500, 400, 300, 200)) -> None:
    """Noise real clips to t, take the UNet's one-step clean estimate, decode it and read its
    shape: with the true caption, and with the shape word swapped. Where the noise has hidden
    the shape, only the caption can supply it; an estimate that reads as the swapped word's
    shape there is the caption at work, one that never does means the UNet cannot draw it."""
    from mcm_demo.embedded.config import build_noise_schedule
    from mcm_demo.embedded.world.grammar import SHAPES, parse_caption, with_shape_swapped
    from mcm_demo.embedded.world.render import render_clip
    from mcm_demo.pipeline import encode_prompts, unet_forward
    from mcm_demo.transfer.look import encode_clip

    evaluator, schedule, gen = (
        Catalog().load_evaluator(),
        build_noise_schedule(),
        torch.Generator().manual_seed(0),
    )
    rows = [
        (c, s, m, b)
        for s in SHAPES
        for c in ("red", "green", "blue")
        for m in ("left", "up")
        for b in ("black", "gray")
    ]
    template = "a {} {} moving {} on a {} background"
    captions = [template.format(*r) for r in rows]
    scenes = [parse_caption(c) for c in captions]
    swapped_scenes = [with_shape_swapped(s) for s in scenes]
    swapped = [s.caption for s in swapped_scenes]

    def shape_read(z, as_in):  # how often the decoded latents show the shape of `as_in`'s scenes
        return score_clips(evaluator, pipe.decode_latents(z), as_in).accuracy["shape"]

    z = torch.cat(
        [encode_clip(pipe, render_clip(scene, "lq", i)) for i, scene in enumerate(scenes)]
    )
    print(
        f"{len(rows)} real clips; their clean latents read back shape {shape_read(z, scenes):.2f}"
    )
    text = [encode_prompts(pipe.tokenizer, pipe.text_encoder, c) for c in (captions, swapped)]
    pipe.unet.eval()
    for t in timesteps:
        ts = torch.full((len(rows),), t)
        noisy = schedule.add_noise(z, torch.randn(z.shape, generator=gen), ts)
        with_caption, with_swapped = (
            pipe.denoised_estimate(unet_forward(pipe.unet, noisy, ts, h), noisy, t) for h in text
        )
        print(
            f"t={t}: clean estimate with the caption reads its shape "
            f"{shape_read(with_caption, scenes):.2f}; "
            "with the shape word swapped it reads the clip's shape "
            f"{shape_read(with_swapped, scenes):.2f}, "
            f"the swapped word's {shape_read(with_swapped, swapped_scenes):.2f} (chance 0.20)"
        )


@torch.no_grad()
def shape_loss_probe(pipe, timesteps=(400, 550, 700)) -> None:
    """The denoising loss on real clips, overall and on the latent pixels their outline crosses,
    with the caption, with the shape word swapped, with only the shape word's own state swapped
    and with every state but that one swapped. Which of the swaps raises the loss says whether
    the UNet reads the shape word itself (and not the later words' states, which depend on it)."""
    from mcm_demo.embedded.config import build_noise_schedule
    from mcm_demo.embedded.world.datasets import object_mask
    from mcm_demo.embedded.world.grammar import with_shape_swapped
    from mcm_demo.embedded.world.render import render_clip
    from mcm_demo.pipeline import encode_prompts
    from mcm_demo.transfer.look import encode_clip

    scenes = heldout_scenes(48, seed=EVAL_SEED)
    z = torch.cat([encode_clip(pipe, render_clip(s, "lq", i)) for i, s in enumerate(scenes)])
    masks = torch.stack([torch.from_numpy(object_mask(s, i)) for i, s in enumerate(scenes)])
    outline = outline_weight(masks, z.shape[-1]).unsqueeze(1)
    own, swapped = (
        encode_prompts(pipe.tokenizer, pipe.text_encoder, [s.caption for s in group])
        for group in (scenes, [with_shape_swapped(s) for s in scenes])
    )
    word = 3  # "<bos> a {colour} {shape} …"
    token_only, all_but_token = own.clone(), swapped.clone()
    token_only[:, word], all_but_token[:, word] = swapped[:, word], own[:, word]
    texts = {
        "caption": own,
        "shape word swapped": swapped,
        "its state only": token_only,
        "all states but its": all_but_token,
    }
    schedule, gen = build_noise_schedule(), torch.Generator().manual_seed(1)
    pipe.unet.eval()
    for t in timesteps:
        parts = []
        for name, err in zip(
            texts, same_noise_errors(pipe.unet, schedule, z, t, texts.values(), gen)
        ):
            err = err.mean(1, keepdim=True)
            parts.append(f"{name} {err.mean():.4f} / {(err * outline).sum() / outline.sum():.4f}")
        print(f"t={t}, loss overall / on the outline: " + "; ".join(parts))


def text_probe(tokenizer, text_encoder) -> None:
    from mcm_demo.embedded.world.grammar import (
        COLOURS,
        MOTION_PHRASES,
        MOTIONS,
        SHAPES,
        Scene,
        all_objects,
        is_held_out,
    )
    from mcm_demo.pipeline import encode_prompts

    objects = all_objects("all")
    with torch.no_grad():
        states = encode_prompts(
            tokenizer, text_encoder, [Scene("gray", (o,)).caption for o in objects]
        ).numpy()
    train = np.array([not is_held_out(o) for o in objects])
    # token positions in "<bos> a {colour} {shape} [moving] {motion word} on a gray background
    # <eos>"
    kinds = {
        "colour": (COLOURS, lambda o: 2),
        "shape": (SHAPES, lambda o: 3),
        "motion": (MOTIONS, lambda o: 3 + len(MOTION_PHRASES[o.motion].split())),
    }
    for kind, (words, position) in kinds.items():
        labels = np.array([words.index(getattr(o, kind)) for o in objects])
        x = np.stack([states[i, position(o)] for i, o in enumerate(objects)])
        means = np.stack([x[train & (labels == k)].mean(0) for k in range(len(words))])
        nearest = np.argmin(((x[~train, None] - means[None]) ** 2).sum(-1), 1)
        spread = np.mean(
            [np.linalg.norm(x[labels == k] - means[k], axis=1).mean() for k in range(len(words))]
        )
        apart = np.linalg.norm(means[:, None] - means[None], axis=-1)[
            np.triu_indices(len(words), 1)
        ]
        print(
            f"{kind:6s} word: spread {spread:.2f} around its mean, means "
            f"{apart.min():.2f}–{apart.max():.2f} "
            f"apart (mean {apart.mean():.2f}); held-out combinations read back "
            f"{(nearest == labels[~train]).mean():.2f}"
        )


def report(pipe, args) -> None:
    """Sample the held-out prompts and print what the evaluator reads in them."""
    scenes = heldout_scenes(args.clips, seed=EVAL_SEED)
    t0 = time.time()
    clips = generate_clips(pipe, scenes, args.steps, args.sampler, args.guidance, batch=32)
    s = score_clips(Catalog().load_evaluator(), clips, scenes)
    print(
        f"{args.clips} held-out clips, {args.sampler} {args.steps} steps, CFG {args.guidance} "
        f"({time.time() - t0:.0f}s)"
    )
    print(
        {k: round(v, 3) for k, v in s.accuracy.items()},
        f"watermark {s.watermark_rate:.3f}",
        f"sharpness {s.sharpness:.0f}",
    )


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("folder", nargs="?", default="weights/teacher")
    p.add_argument("--clips", type=int, default=256)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--guidance", type=float, default=5.0)
    p.add_argument("--sampler", default="ddim")
    p.add_argument(
        "--word-probe",
        action="store_true",
        help="the quick check instead (8 clips a prompt, 25 steps)",
    )
    p.add_argument(
        "--vae-ceiling",
        action="store_true",
        help="score --clips real clips decoded back by the VAE",
    )
    p.add_argument(
        "--text-probe",
        action="store_true",
        help="does each word keep its identity in the text encoder?",
    )
    p.add_argument(
        "--shape-probe",
        action="store_true",
        help="does the shape in the UNet's clean estimate follow the word?",
    )
    p.add_argument(
        "--shape-loss-probe",
        action="store_true",
        help="does the loss on the outline depend on the shape word, and on its own state?",
    )
    p.add_argument(
        "--unet",
        nargs="+",
        help="UNet weights to score in the folder's pipeline instead of its own, one after the "
        "other: a run's kept EMA files (runs/shape/unet/ema1500/ema_unet.safetensors), the "
        "shape curve of docs/shape.md",
    )
    args = p.parse_args()
    pipe = TextToVideoPipeline.from_pretrained(args.folder)
    pipe.set_progress_bar_config(disable=True)
    for weights in args.unet or []:
        pipe.unet.load_state_dict(load_file(weights))
        print(weights, end=": ")
        report(pipe, args)
    if args.unet:
        return
    if args.text_probe:
        text_probe(pipe.tokenizer, pipe.text_encoder.eval())
        return
    if args.shape_probe:
        shape_probe(pipe)
        return
    if args.shape_loss_probe:
        shape_loss_probe(pipe)
        return
    if args.vae_ceiling:
        vae_ceiling(pipe.vae.eval(), args.clips)
        return
    if args.word_probe:
        word_probe(pipe, 8, 25, args.guidance)
        direction_loss_probe(pipe)
        return
    print(f"{args.folder}", end=": ")
    report(pipe, args)


if __name__ == "__main__":
    main()
