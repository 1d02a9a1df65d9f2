"""Train the teacher's text encoder and UNet3D together on the low-quality video set.

Recipe from DESIGN §3a (each part measured there to matter on a CPU budget): v-prediction
with zero terminal SNR, latents cached once, cross-attention at all levels, lr 1e-3, EMA,
caption dropout for classifier-free guidance, and min-SNR weighting written as
min(snr+1, 5)/(snr+1) — the usual min(snr, 5)/(snr+1) gives zero weight at t=999, exactly
where only the caption can tell the model what to draw.

Object weighting: an object covers 2–3 of the 8×8 latent pixels, so in a plain MSE the shape
and the motion words lower the loss far less than the background and colour words do, and a
model trained 2,800 steps that way followed colour and background but neither shape nor
motion. `object_weight` multiplies the loss on the latent pixels around the objects (their
render masks, pooled to the latent grid and dilated by one pixel).

The text encoder is frozen, as ModelScopeT2V's CLIP is. Ours is a seeded, untrained CLIP
text transformer: contrastive pre-training is beyond the CPU budget, and a jointly trained
one collapsed the words the UNet had not started to use yet. Measured on the shipped teacher
(1,900 steps): "moving left", "right" and "up" came out at most 0.6 apart (states of norm 8;
a colour word moves them 15) and the samples of the two prompts were identical to 0.001 per
pixel, while the frozen random encoder keeps every word 2.5–4 apart, colour, shape and
motion alike.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import random
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ..embedded.config import TeacherConfig, build_noise_schedule, build_unet
from ..embedded.text import build_text_encoder, build_tokenizer
from ..embedded.world.datasets import SceneStream, object_mask
from ..pipeline import encode_clips, encode_prompts
from .checkpoint import load_snapshot, load_state, save_state


@dataclasses.dataclass
class UNetTrainConfig:
    steps: int = 4000
    batch: int = 32
    lr: float = 1e-3
    caption_dropout: float = 0.1
    ema_decay: float = 0.999
    num_clips: int = 8000
    seed: int = 0
    run_dir: str = "runs/unet"
    save_every: int = 100
    object_weight: float = 4.0
    init_unet: str | None = None  # a run folder whose EMA UNet starts this run (warm start)
    # A shipped teacher folder (pipeline layout) whose tokenizer, frozen text encoder and UNet
    # start this run; its VAE is the caller's. Stands in for `init_unet`.
    base: str | None = None
    # Stills per step, drawn as single frames of the cached clips and run with the temporal
    # layers skipped (F = 1), beside the `batch` clips: ModelScopeT2V's and AnimateDiff's joint
    # image-video training. A still costs an eighth of a clip, and shape is a spatial concept.
    image_batch: int = 0
    # Also keep the EMA UNet every this many steps (runs/<name>/unet/ema<step>), for the shape
    # curve.
    keep_every: int = 0
    # A snapshot folder (`save_snapshot`) to continue from when `run_dir` holds no state yet:
    # how a run goes on in a later session on a fresh machine.
    resume_from: str | None = None
    # Share of each batch whose timestep is drawn from the noisiest 40% instead of all 1,000:
    # layout, shape and direction are decided there, and a run's samples got the low-noise
    # detail (background, watermark) right long before any of those.
    high_noise_share: float = 0.0


@torch.no_grad()
def cache_latents(vae, num_clips: int, seed: int, path: str, batch: int = 64, log=print):
    """Render the video set once and store its VAE latents (scaled) with their captions."""
    if os.path.exists(path):
        return
    stream = SceneStream(seed, split="train", two_object_prob=0.3)
    latents, captions = [], []
    t0 = time.time()
    for start in range(0, num_clips, batch):
        clips, scenes, _ = stream.clips(min(batch, num_clips - start), style="lq")
        latents.append(encode_clips(vae, clips))
        captions += [s.caption for s in scenes]
        if start % (batch * 20) == 0:
            log(f"cached {start + len(clips)}/{num_clips} clips {time.time() - t0:.0f}s")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    save_file(
        {"latents": torch.cat(latents).contiguous()},
        path,
        metadata={"captions": json.dumps(captions)},
    )


def replayed_object_masks(num_clips: int, seed: int):
    """The render masks (F, H, W) of the cached clips, one by one, from the same seeded scene
    stream."""
    stream = SceneStream(seed, split="train", two_object_prob=0.3)
    for _ in range(num_clips):
        scene, render_seed = stream.next()
        yield torch.from_numpy(object_mask(scene, render_seed))


@torch.no_grad()
def cache_object_masks(num_clips: int, seed: int, path: str, latent_size: int = 8, log=print):
    """Latent-grid object masks of the cached clips."""
    if os.path.exists(path):
        return
    full = torch.stack(list(replayed_object_masks(num_clips, seed)))  # (N, F, H, W)
    pooled = F.adaptive_avg_pool2d(full, latent_size)
    # One latent pixel of margin: the edge of a shape lives in its neighbours too.
    dilated = F.max_pool2d(pooled, 3, stride=1, padding=1)
    save_file({"masks": dilated.unsqueeze(1).half().contiguous()}, path)
    log(f"cached {num_clips} object masks")


def load_latents(path: str):
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        captions = json.loads(f.metadata()["captions"])
    return load_file(path)["latents"], captions


def draw_timesteps(batch: int, num_steps: int, gen, high_noise_share: float = 0.0) -> torch.Tensor:
    """Uniform timesteps; with `high_noise_share`, that share of them from the noisiest 40%.
    At share 0 the generator is drawn exactly as before the option existed (runs replay)."""
    t = torch.randint(0, num_steps, (batch,), generator=gen)
    if high_noise_share > 0:
        noisiest = torch.randint(int(num_steps * 0.6), num_steps, (batch,), generator=gen)
        t = torch.where(torch.rand(batch, generator=gen) < high_noise_share, noisiest, t)
    return t


def v_prediction_loss(
    unet,
    text_encoder,
    tokenizer,
    schedule,
    latents,
    captions,
    gen,
    pixel_weight=None,
    high_noise_share: float = 0.0,
) -> torch.Tensor:
    b, device = latents.shape[0], latents.device
    # drawn on the CPU generator and moved: the same seed gives the same run on any device
    noise = torch.randn(latents.shape, generator=gen).to(device)
    t_cpu = draw_timesteps(b, schedule.config.num_train_timesteps, gen, high_noise_share)
    t = t_cpu.to(device)
    noisy = schedule.add_noise(latents, noise, t)
    target = schedule.get_velocity(latents, noise, t)
    hidden = encode_prompts(tokenizer, text_encoder, captions)
    pred = unet(noisy, t, hidden).sample
    alpha_bar = schedule.alphas_cumprod[t_cpu].to(device)
    snr = alpha_bar / (1 - alpha_bar).clamp(min=1e-8)
    weight = torch.clamp(snr + 1, max=5.0) / (snr + 1)
    err = F.mse_loss(pred, target, reduction="none")
    if pixel_weight is not None:  # (B, 1, F, H, W); normalised so the loss keeps its scale
        err = err * pixel_weight / pixel_weight.mean((1, 2, 3, 4), keepdim=True)
    return (weight * err.mean((1, 2, 3, 4))).mean()


def start_new_attention_as_no_ops(unet, missing: list[str]) -> list[str]:
    """Zero the output projection of each (temporal) transformer a warm start had no weights for.

    A transformer adds its output to its input, so with `proj_out` at zero the grown UNet
    computes exactly what the checkpoint did; training then opens the new attention up. This
    is how a UNet trained with a plain top level gains cross-attention there. Returns the
    missing keys those transformers account for.
    """
    missing_set, covered = set(missing), []
    for name, module in unet.named_modules():
        if not hasattr(module, "transformer_blocks") or not hasattr(module, "proj_out"):
            continue
        keys = [f"{name}.{k}" for k in module.state_dict()]
        if not all(k in missing_set for k in keys):
            continue
        with torch.no_grad():
            for p in module.proj_out.parameters():
                p.zero_()
        covered += keys
    return covered


def train_unet(
    cfg: UNetTrainConfig, vae, model_cfg: TeacherConfig = TeacherConfig(), log=print, data=None
):
    """The teacher's loop, on 1..N processes (`accelerate launch`, as `distill`): each rank
    draws from its own part of the cached clips, gradients are averaged before each step (every
    rank starts from the same seeded weights, so all keep the same UNet), and the main process
    alone writes. `data` (a `train.clips.DataConfig` with `videos`) trains on a disk set."""
    from .clips import cached_video_set, rank_rows
    from .distill import average_gradients
    from .loop import process_state

    state_of_run = process_state()
    rank, world, main = (
        state_of_run.process_index,
        state_of_run.num_processes,
        state_of_run.is_main_process,
    )
    log = log if main else (lambda *a, **k: None)
    torch.manual_seed(cfg.seed)
    pixel_weight = None
    if data is not None and data.videos:
        from accelerate import Accelerator

        from ..data import ClipSpec, open_video_set
        from ..embedded.world import NUM_FRAMES, SIZE

        videos = open_video_set(
            data.videos, ClipSpec(NUM_FRAMES, SIZE, data.frame_stride, data.fps)
        )
        folder = data.cache_latents or os.path.join(cfg.run_dir, "latent-cache")
        accelerator = Accelerator(cpu=not torch.cuda.is_available())
        latents, captions, skipped = cached_video_set(videos, vae, folder, accelerator, log)
        log(skipped.report(f"data ({data.videos})"))
        if cfg.object_weight > 0:  # the object masks come from the world's renderer
            log("a disk video set has no object masks: object weighting is off")
    else:
        latents_path = os.path.join(cfg.run_dir, "latents.safetensors")
        if main:
            cache_latents(vae, cfg.num_clips, cfg.seed, latents_path, log=log)
        if world > 1:
            state_of_run.wait_for_everyone()
        latents, captions = load_latents(latents_path)
        if cfg.object_weight > 0:
            masks_path = os.path.join(cfg.run_dir, "object_masks.safetensors")
            if main:
                cache_object_masks(len(captions), cfg.seed, masks_path, latents.shape[-1], log=log)
            if world > 1:
                state_of_run.wait_for_everyone()
            pixel_weight = 1.0 + cfg.object_weight * load_file(masks_path)["masks"].float()
    own_rows = rank_rows(len(captions), rank, world, cfg.seed)
    tokenizer = build_tokenizer()
    text_encoder, unet = build_text_encoder(model_cfg, tokenizer), build_unet(model_cfg)
    if cfg.base:
        text_encoder.load_state_dict(
            load_file(os.path.join(cfg.base, "text_encoder", "model.safetensors"))
        )
        unet.load_state_dict(
            load_file(os.path.join(cfg.base, "unet", "diffusion_pytorch_model.safetensors"))
        )
    elif cfg.init_unet:
        # Parts a warm start may lack are the zero-initialised additions, which start as no-ops.
        missing, unexpected = unet.load_state_dict(
            load_file(os.path.join(cfg.init_unet, "ema_unet.safetensors")), strict=False
        )
        new_attention = set(start_new_attention_as_no_ops(unet, missing))
        missing = [
            k
            for k in missing
            if k not in new_attention and not k.startswith(unet.ZERO_INITIALISED_PARTS)
        ]
        if missing or unexpected:
            raise ValueError(
                f"{cfg.init_unet} does not fit this UNet: missing {missing}, unexpected "
                f"{unexpected}"
            )
    text_encoder.requires_grad_(False)
    # On a GPU machine the run moves there whole; the state it saves resumes anywhere.
    device = state_of_run.device
    text_encoder, unet, latents = text_encoder.to(device), unet.to(device), latents.to(device)
    if pixel_weight is not None:
        pixel_weight = pixel_weight.to(device)
    ema_text, ema_unet = copy.deepcopy(text_encoder), copy.deepcopy(unet)
    for m in (ema_text, ema_unet):
        m.requires_grad_(False)
    params = list(unet.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    modules = {
        "unet": unet,
        "text_encoder": text_encoder,
        "ema_unet": ema_unet,
        "ema_text_encoder": ema_text,
    }
    state = load_state(cfg.run_dir, modules, opt)
    if (
        state is None
        and cfg.resume_from
        and os.path.exists(os.path.join(cfg.resume_from, "state.json"))
    ):
        state = {**load_snapshot(cfg.resume_from, modules), "optimizer restarted": True}
        log(
            f"resumed from the snapshot {cfg.resume_from} at step {state['step']} (optimiser "
            "state restarted)"
        )
    step = (state or {"step": 0})["step"]
    warm_up_from = step if state is not None and "optimizer restarted" in state else 0
    schedule = build_noise_schedule()
    gen = torch.Generator().manual_seed(cfg.seed * 1000003 + step + 7_777_777 * rank)
    pick = random.Random(cfg.seed * 7 + step + 1_000_003 * rank)
    unet.train()
    text_encoder.eval()

    def captions_with_dropout(idx):  # an empty caption teaches the unconditional branch (CFG)
        return ["" if pick.random() < cfg.caption_dropout else captions[i] for i in idx]

    def stills_batch():
        """`image_batch` single frames (B, C, 1, H, W) of random cached clips, with captions and
        weights."""
        idx = pick.choices(own_rows, k=cfg.image_batch)
        frames = [pick.randrange(latents.shape[2]) for _ in idx]
        rows, cols = torch.tensor(idx, device=device), torch.tensor(frames, device=device)
        x = latents[rows, :, cols].unsqueeze(2)
        w = None if pixel_weight is None else pixel_weight[rows, :, cols].unsqueeze(2)
        return x, captions_with_dropout(idx), w

    t0 = time.time()
    while step < cfg.steps:
        idx = pick.sample(own_rows, cfg.batch)
        batch_captions = captions_with_dropout(idx)
        rows = torch.tensor(idx, device=device)
        lr = cfg.lr * min(1.0, (step - warm_up_from + 1) / 200)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss = v_prediction_loss(
            unet,
            text_encoder,
            tokenizer,
            schedule,
            latents[rows],
            batch_captions,
            gen,
            None if pixel_weight is None else pixel_weight[rows],
            cfg.high_noise_share,
        )
        loss.backward()
        if cfg.image_batch:
            stills, stills_captions, stills_w = stills_batch()
            still_loss = v_prediction_loss(
                unet,
                text_encoder,
                tokenizer,
                schedule,
                stills,
                stills_captions,
                gen,
                stills_w,
                cfg.high_noise_share,
            )
            still_loss.backward()
            loss = loss + still_loss.detach()
        if world > 1:
            average_gradients(params)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        decay = min(cfg.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for ema, live in ((ema_unet, unet), (ema_text, text_encoder)):
                for pe, p in zip(ema.parameters(), live.parameters()):
                    pe.lerp_(p, 1 - decay)
        if step % 25 == 0:
            log(f"unet step {step}/{cfg.steps} loss {loss.item():.4f} {time.time() - t0:.0f}s")
        if (step % cfg.save_every == 0 or step == cfg.steps) and main:
            save_state(cfg.run_dir, step, modules, opt)
        if cfg.keep_every and step % cfg.keep_every == 0 and main:
            keep = os.path.join(cfg.run_dir, f"ema{step}")
            os.makedirs(keep, exist_ok=True)
            save_file(
                {k: v.detach().cpu().contiguous() for k, v in ema_unet.state_dict().items()},
                os.path.join(keep, "ema_unet.safetensors"),
            )
    return tokenizer, ema_text.cpu().eval(), ema_unet.cpu().eval()
