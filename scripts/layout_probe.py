"""How fast the x4 UNet learns where a caption puts things, with nothing else to learn.

    python scripts/layout_probe.py runs/dir-a --vae runs/x4/export2000/vae [--spatial-positions] [--lr 5e-3]

At t=999 (zero terminal SNR) the UNet sees pure noise, so its best answer is the mean of the
clips its caption allows: for "moving left" the object starts on the right and ends on the
left. That mean is where sampling takes its layout from. This trains the x4 UNet from scratch
at t=999 only, on the direction testbed's reduced world (its latent cache, built on first use),
and every 50 steps prints the loss on 32 unseen clips with their caption, with the direction
flipped and with it turned to the other axis. Printed once first: what predicting the training
clips' mean would score on the same clips, grouped by nothing, by colour, by colour and axis,
and by the whole caption. Not resumable: a few hundred steps is the point.
"""
import argparse
import dataclasses
import os
import random
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import direction_testbed as testbed  # noqa: E402
from mcm_demo.models import (TEACHER_SIZES, build_noise_schedule, build_text_encoder, build_tokenizer,  # noqa: E402
                             build_unet, encode_prompts, unet_forward)
from mcm_demo.teacher.train_unet import load_latents  # noqa: E402


def main():
    from diffusers import AutoencoderKL

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="where the testbed's latent cache lives (or is built)")
    p.add_argument("--vae", required=True, help="a x4 teacher's vae folder")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--spatial-positions", action="store_true", help="UNet with a learned embedding of place")
    args = p.parse_args()
    torch.manual_seed(0)
    vae = AutoencoderKL.from_pretrained(args.vae).eval()
    cache = os.path.join(args.run_dir, "latents.safetensors")
    if not os.path.exists(cache):
        testbed.build_cache(vae, cache)
    latents, captions = load_latents(cache)
    z, pairs = testbed.unseen_clips(vae)
    print("predicting the training mean, grouped by:", testbed.mean_predictor_losses(latents, captions, z, pairs))

    size = dataclasses.replace(TEACHER_SIZES["x4"], unet_spatial_positions=args.spatial_positions)
    tokenizer = build_tokenizer()
    text_encoder, unet = build_text_encoder(size, tokenizer).eval(), build_unet(size).train()
    schedule = build_noise_schedule()
    with torch.no_grad():
        probes = [encode_prompts(tokenizer, text_encoder, c) for c in testbed.probe_captions(pairs)]
    eval_noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=0.0)
    gen, pick, t0 = torch.Generator().manual_seed(1), random.Random(0), time.time()
    for step in range(1, args.steps + 1):
        rows = pick.sample(range(len(captions)), args.batch)
        x, t = latents[rows], torch.full((args.batch,), 999)
        noise = torch.randn(x.shape, generator=gen)
        with torch.no_grad():
            text = encode_prompts(tokenizer, text_encoder, [captions[i] for i in rows])
        prediction = unet_forward(unet, schedule.add_noise(x, noise, t), t, text)
        loss = (prediction - schedule.get_velocity(x, noise, t)).pow(2).mean()
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, step / 50)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        if step % 50 == 0:
            unet.eval()
            with torch.no_grad():
                losses = testbed.probe_losses(unet, schedule, z, eval_noise, 999, probes)
            unet.train()
            print(f"step {step}: t=999 loss with caption/direction flipped/turned to the other axis "
                  + "/".join(f"{v:.4f}" for v in losses) + f"  ({time.time() - t0:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
