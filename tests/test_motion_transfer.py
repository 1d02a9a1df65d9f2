"""Motion transfer on tiny models: the attention flow, VMC's loss and tuning, both methods end to
end."""

import copy

import numpy as np
import pytest
import torch

from mcm_demo.adapters import attach_lora
from mcm_demo.embedded.world import parse_caption, render_clip
from mcm_demo.transfer import TransferConfig, appearance_invariant_prompt, transfer
from mcm_demo.transfer.flow import flow_loss, motion_flow
from mcm_demo.transfer.look import encode_clip, recoloured_clips, recoloured_latents, with_look
from mcm_demo.transfer.vmc import temporal_attention_targets, tune_vmc, vmc_loss


def _shifted_features(shift=(1, 0), frames=3, h=8, w=8, dim=16, heads=2):
    """Each frame is the previous one moved by `shift` (x, y): random content per position,
    so a query finds itself one step along in the next frame."""
    g = torch.Generator().manual_seed(0)
    big = torch.randn(h + 2 * frames, w + 2 * frames, heads, dim // heads, generator=g)
    big = (big / big.norm(dim=-1, keepdim=True) * 12).flatten(
        2
    )  # per head: a patch is most like itself
    maps = []
    for f in range(frames):
        y0, x0 = frames - f * shift[1], frames - f * shift[0]
        maps.append(big[y0 : y0 + h, x0 : x0 + w].reshape(h * w, dim))
    feats = torch.stack(maps)  # (F, N, dim)
    return feats, feats.clone(), heads


@pytest.mark.parametrize("window", [None, 1, 2])
def test_flow_of_a_translated_clip_is_the_translation(window):
    q, k, heads = _shifted_features((1, 0))
    flow = motion_flow(q, k, 3, heads, 8, 8, window)
    assert flow.shape == (1, 2, 64, 2)
    inner = flow.view(1, 2, 8, 8, 2)[:, :, 1:-1, 1:-2]  # tokens whose match is inside the frame
    assert torch.allclose(inner[..., 0], torch.ones_like(inner[..., 0]), atol=0.05)
    assert inner[..., 1].abs().max() < 0.05
    up = motion_flow(*_shifted_features((0, -1))[:2], 3, heads, 8, 8, window).view(1, 2, 8, 8, 2)[
        :, :, 2:-1, 1:-1
    ]
    assert torch.allclose(up[..., 1], -torch.ones_like(up[..., 1]), atol=0.05)
    assert flow_loss(flow, flow) == 0 and flow_loss(flow, torch.zeros_like(flow)) > 0.5


def test_appearance_invariant_prompt():
    assert (
        appearance_invariant_prompt("a red star spinning on a white background")
        == "a star spinning"
    )
    assert appearance_invariant_prompt("a yellow circle on a gray background") == "a circle"


@pytest.fixture()
def pipe(tiny_pipeline):
    p = copy.deepcopy(tiny_pipeline)
    attach_lora(p.unet, "student", rank=4, init="gaussian")
    return p


def _reference():
    return render_clip(parse_caption("a red square moving right on a black background"), "lq", 0)


def test_vmc_loss_and_tuning_touch_only_the_temporal_lora(pipe, tmp_path, monkeypatch):
    x0 = encode_clip(pipe, _reference())
    text = pipe.encode_prompt(["a square"])
    loss = float(vmc_loss(pipe, x0, text, torch.Generator().manual_seed(0)).detach())
    assert np.isfinite(loss) and 0 <= loss <= 2
    fresh = copy.deepcopy(pipe)
    before = {n: p.detach().clone() for n, p in pipe.unet.named_parameters()}
    cfg = TransferConfig(method="vmc", tune_steps=3)
    name = tune_vmc(pipe, x0, "a square", cfg, cache_dir=str(tmp_path))
    changed = {
        n for n, p in pipe.unet.named_parameters() if n in before and not torch.equal(p, before[n])
    }
    added = set(dict(pipe.unet.named_parameters())) - set(before)
    assert (
        added and all(f".{name}." in n for n in added) and not changed
    )  # teacher and student untouched
    assert all(
        "temp_attentions" in t or "transformer_in" in t
        for t in temporal_attention_targets(pipe.unet)
    )
    # the same clip, prompt and settings again: read from the cache, not tuned
    monkeypatch.setattr("mcm_demo.transfer.vmc.vmc_loss", lambda *a: pytest.fail("tuned again"))
    assert tune_vmc(fresh, x0, "a square", cfg, cache_dir=str(tmp_path)) == name
    tuned = dict(pipe.unet.named_parameters())
    assert all(
        torch.equal(p, tuned[n]) for n, p in fresh.unet.named_parameters() if f".{name}." in n
    )


def test_recoloured_copies_move_alike_and_take_every_colour():
    clip = render_clip(parse_caption("a red square moving right on a black background"), "laion", 0)
    copies = recoloured_clips(clip)
    assert len(copies) == 12 and np.array_equal(copies[0], clip)
    moved = lambda c: np.abs(c.astype(int) - c[:1].astype(int)).sum(-1) > 0  # noqa: E731 — where it changed
    assert all(
        np.array_equal(moved(c), moved(clip)) for c in copies
    )  # the same motion in every copy
    centre = (
        clip[0, ..., 0].astype(int) - clip[0, ..., 1]
    ).argmax()  # the reddest pixel: the square's
    object_colours = {tuple(c[0].reshape(-1, 3)[centre] > 127) for c in copies}
    backgrounds = {tuple(c[0, 0, 0] > 127) for c in copies}
    assert len(object_colours) == 6 and backgrounds == {
        (False,) * 3,
        (True,) * 3,
    }  # red → all six; black ↔ white


def test_vmc_tuning_draws_a_copy_each_step(pipe, monkeypatch):
    copies = recoloured_latents(pipe, _reference())
    assert copies.shape[0] == 12 and torch.allclose(copies[:1], encode_clip(pipe, _reference()))
    seen = []
    real_loss = vmc_loss

    def recording_loss(p, x0, text, generator):
        seen.append(next(i for i in range(len(copies)) if torch.equal(copies[i : i + 1], x0)))
        return real_loss(p, x0, text, generator)

    monkeypatch.setattr("mcm_demo.transfer.vmc.vmc_loss", recording_loss)
    tune_vmc(pipe, copies, "a square", TransferConfig(method="vmc", tune_steps=8))
    assert len(seen) == 8 and len(set(seen)) > 1


@pytest.mark.parametrize("method", ["none", "fastvmt", "vmc"])
def test_transfer_runs_each_method(pipe, method):
    cfg = TransferConfig(method=method, steps=4, inner_iterations=6, reuse_every=3, tune_steps=2)
    frames, info = transfer(
        pipe, "a yellow star on a gray background", _reference(), cfg, "student"
    )
    assert frames.shape == (8, 64, 64, 3) and np.isfinite(frames).all()
    if method == "fastvmt":
        assert len(info["guidance"]) == 2  # the first two steps (the default guided_steps)
        for log in info["guidance"]:
            assert (
                log["full_backwards"] == 2 and len(log["flow_loss"]) == 2
            )  # iterations 0 and 3 of 6
    assert (info["timesteps"][0] == 999) == (
        method == "none"
    )  # the others start from the reference


def test_start_is_exact_and_guidance_skips_the_zero_snr_step(pipe):
    """strength·T is the first timestep (not rounded to the grid); from pure noise the guidance
    runs at the next steps, where the noised reference still carries its motion."""
    cfg = TransferConfig(
        method="fastvmt", steps=4, strength=0.7, inner_iterations=1, guided_steps=1
    )
    _, info = transfer(pipe, "a star", _reference(), cfg, "student")
    assert info["timesteps"] == [700, 499, 259] and [g["timestep"] for g in info["guidance"]] == [
        700
    ]
    cfg = TransferConfig(
        method="fastvmt", steps=4, strength=1.0, inner_iterations=1, guided_steps=2
    )
    _, info = transfer(pipe, "a star", _reference(), cfg, "student")
    assert info["timesteps"] == [999, 759, 499, 259] and [
        g["timestep"] for g in info["guidance"]
    ] == [759, 499]


def test_dense_every_iteration_baseline_does_a_backward_each_time(pipe):
    cfg = TransferConfig(method="fastvmt", inner_iterations=4, reuse_every=1, window=None)
    _, info = transfer(pipe, "a star", _reference(), cfg, "student")
    assert info["guidance"][0]["full_backwards"] == 4


def test_fastvmt_reads_the_flow_below_a_plain_top_level_as_on_the_x4_teacher():
    """The ×4 teacher's 16×16 decoder level has no attention: the flow comes from the 8×8 one."""
    from diffusers import DDIMScheduler

    from mcm_demo import TextToVideoPipeline
    from mcm_demo.embedded.config import TeacherConfig, build_noise_schedule, build_unet, build_vae
    from mcm_demo.embedded.text import build_text_encoder, build_tokenizer
    from mcm_demo.transfer.flow import spatial_attention

    torch.manual_seed(0)
    cfg = TeacherConfig(
        latent_channels=4,
        vae_channels=(8, 8, 8),
        text_hidden=16,
        text_layers=1,
        unet_channels=(8, 8, 16),
        unet_plain_levels=1,
        unet_heads=2,
        unet_spatial_positions=False,
        text_embedding_std=None,
    )
    tokenizer = build_tokenizer()
    pipe = TextToVideoPipeline(
        build_vae(cfg),
        build_text_encoder(cfg, tokenizer),
        tokenizer,
        build_unet(cfg),
        DDIMScheduler.from_config(build_noise_schedule().config),
    )
    attach_lora(pipe.unet, "student", rank=4, init="gaussian")
    assert (
        spatial_attention(pipe.unet)
        is pipe.unet.up_blocks[1].attentions[0].transformer_blocks[0].attn1
    )
    cfg = TransferConfig(method="fastvmt", steps=2, inner_iterations=3, reuse_every=3)
    frames, info = transfer(
        pipe, "a yellow star on a gray background", _reference(), cfg, "student"
    )
    assert frames.shape == (8, 64, 64, 3) and np.isfinite(frames).all()
    assert all(np.isfinite(log["flow_loss"]).all() for log in info["guidance"])


def test_with_look_recolours_background_and_object_and_keeps_the_layout():
    frames = torch.zeros(1, 3, 2, 8, 8)  # black, with a red square
    frames[:, 0, :, 2:4, 2:4] = 1.0
    frames[:, 0, :, 2, 2] = 0.9  # some detail inside it
    frames[..., 0, 0] = 0.05  # a background pixel a little off the median
    look = torch.full((1, 3, 2, 8, 8), 0.5)  # gray, with a green object in frame 0 only
    look[:, 1, 0, 3:8, 3:8] = 0.85  # its blurred rim, which must not tint its colour
    look[:, 1, 0, 4:7, 4:7] = 1.0
    look[:, :, 0, 0, :3] = 0.7  # a faint streak of watermark, ignored too
    out = with_look(frames, look)
    assert torch.allclose(
        out[:, :, :, 5:, 5:], torch.full_like(out[:, :, :, 5:, 5:], 0.5)
    )  # background repainted
    assert torch.allclose(out[..., 0, 0], torch.full_like(out[..., 0, 0], 0.55))
    # frame 0: the object where the reference has it, in the look's colour, its detail kept
    green = torch.tensor([0.5, 1.0, 0.5])[:, None, None]
    assert torch.allclose(
        out[0, :, 0, 2:4, 2:4],
        frames[0, :, 0, 2:4, 2:4] - torch.tensor([1.0, 0, 0])[:, None, None] + green,
    )
    # frame 1: the look has no object there, so the object keeps the reference's colour
    assert torch.allclose(out[0, :, 1, 2:4, 2:4], frames[0, :, 1, 2:4, 2:4])


def test_prompt_look_start_is_the_reference_in_the_prompts_look(pipe, monkeypatch):
    starts = []
    real_noised = transfer.__globals__["_noised"]
    monkeypatch.setattr(
        "mcm_demo.transfer.core._noised", lambda x0, *a: starts.append(x0) or real_noised(x0, *a)
    )
    cfg = TransferConfig(method="fastvmt", steps=2, inner_iterations=0, start_look="prompt")
    transfer(pipe, "a star on a white background", _reference(), cfg, "student")
    reference = encode_clip(pipe, _reference())
    denoise = pipe.denoiser(pipe.encode_prompt(["a star on a white background"]), consistency=True)
    noise = torch.randn(reference.shape, generator=torch.Generator().manual_seed(cfg.seed))
    look = torch.from_numpy(pipe.decode_latents(denoise(noise, 999))).permute(0, 4, 1, 2, 3)
    frames = torch.from_numpy(_reference()).float().div(255).permute(3, 0, 1, 2)[None]
    expected = encode_clip(pipe, with_look(frames, look)[0].permute(1, 2, 3, 0).mul(255).numpy())
    assert torch.allclose(starts[0], expected, atol=1e-5) and not torch.allclose(
        starts[0], reference, atol=1e-2
    )
    with pytest.raises(ValueError, match="start look"):
        transfer(pipe, "a star", _reference(), TransferConfig(start_look="mean"), "student")


def test_the_layout_start_follows_the_read_motion_and_a_spin_starts_lower(pipe, monkeypatch):
    starts = []
    real_noised = transfer.__globals__["_noised"]
    monkeypatch.setattr(
        "mcm_demo.transfer.core._noised", lambda x0, *a: starts.append(x0) or real_noised(x0, *a)
    )
    cfg = TransferConfig(method="fastvmt", steps=2, inner_iterations=0)
    prompt = "a yellow star on a gray background"
    _, info = transfer(pipe, prompt, _reference(), cfg, "student")
    assert info["start"] == "layout" and info["layout"] == "star yellow gray"
    assert info["motion"] == "the moving object moves right" and info["timesteps"][0] == 750
    spin = render_clip(parse_caption("a red square spinning on a black background"), "laion", 0)
    _, info = transfer(pipe, prompt, spin, cfg, "student")
    assert info["timesteps"][0] == 450 and info["strength"] == cfg.turn_strength
    # the start is the layout, encoded: nothing of the reference's red square on black
    from mcm_demo.transfer.core import world_layout
    from mcm_demo.transfer.reading import read_motion

    layout, _ = world_layout(pipe, prompt, read_motion(spin), 8)
    assert torch.allclose(starts[-1], encode_clip(pipe, layout), atol=1e-5)
    with pytest.raises(ValueError, match="No usable motion"):
        transfer(pipe, prompt, np.repeat(spin[:1], 8, 0), cfg, "student")
