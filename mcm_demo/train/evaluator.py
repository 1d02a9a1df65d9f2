"""Train the world's evaluator on every style and attribute combination (`train evaluator`)."""

from __future__ import annotations

import dataclasses
import time

import torch
import torch.nn.functional as F

from ..embedded.world import STYLES
from ..embedded.world.datasets import SceneStream, to_tensor
from ..metrics.evaluator import HEADS, ToyEvaluator, multi_hot


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
    noise = (
        (torch.rand(b, 1, 1, 1, 1, generator=gen) < 0.3)
        * torch.randn(x.shape, generator=gen)
        * 0.06
    )
    return (x + noise).clamp(-1, 1)


@dataclasses.dataclass
class EvaluatorTrainConfig:
    steps: int = 1000
    batch: int = 24
    lr: float = 1e-3
    seed: int = 0
    run_dir: str = "runs/evaluator"
    save_every: int = 250
    init: str | None = (
        None  # an evaluator folder to start from (a world change re-teaches it, not from scratch)
    )


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
            loss = (
                loss
                + _soft_ce(out["shape"], soft)
                + _soft_ce(frames.flatten(0, 1), soft.repeat_interleave(frames.shape[1], 0))
            )
            continue
        if attr == "background":
            loss = loss + F.cross_entropy(out[attr], target.argmax(1))
        else:
            loss = (
                loss + F.binary_cross_entropy_with_logits(out[attr], target) * len(HEADS[attr]) / 2
            )
        if attr != "motion":  # appearance is also read from every single frame
            logits = out[f"frame_{attr}"]
            t = target[:, None].expand_as(logits)
            loss = loss + (
                F.cross_entropy(logits.flatten(0, 1), t.argmax(-1).flatten())
                if attr == "background"
                else F.binary_cross_entropy_with_logits(logits, t) * len(HEADS[attr]) / 2
            )
    style = torch.tensor([STYLES.index(s) for s in styles])
    f = clips.shape[2]
    loss = loss + F.cross_entropy(out["frame_style"].flatten(0, 1), style.repeat_interleave(f))
    watermark = torch.tensor([float(s == "lq") for s in styles])
    loss = loss + F.binary_cross_entropy_with_logits(
        out["frame_watermark"][..., 0], watermark[:, None].expand(-1, f)
    )
    return loss


def train_evaluator(cfg: EvaluatorTrainConfig, log=print) -> ToyEvaluator:
    from ..train.checkpoint import load_state, save_state

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
        lr = (
            cfg.lr
            * min(1.0, (step + 1) / 100)
            * 0.5
            * (1 + torch.cos(torch.tensor(step / cfg.steps * 3.14159)).item())
        )
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
