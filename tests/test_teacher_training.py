"""The teacher's UNet stage on tiny models: what trains, what stays frozen, what resumes."""

import torch

from mcm_demo.embedded.config import TeacherConfig, build_unet, build_vae
from mcm_demo.embedded.text import build_text_encoder, build_tokenizer
from mcm_demo.train.teacher import UNetTrainConfig, train_unet

TINY = TeacherConfig(
    vae_channels=(8, 8, 8, 8),
    text_hidden=16,
    text_layers=1,
    unet_channels=(8, 16, 16),
    unet_heads=2,
    latent_channels=8,
    unet_plain_levels=0,
    unet_spatial_positions=False,
    text_embedding_std=None,
)


def _run(tmp_path, name, **overrides):
    torch.manual_seed(0)
    vae = build_vae(TINY).eval()
    cfg = UNetTrainConfig(
        **{
            **dict(steps=2, batch=2, num_clips=4, run_dir=str(tmp_path / name), save_every=1),
            **overrides,
        }
    )
    return train_unet(cfg, vae, TINY, log=lambda *a: None)


def test_frozen_text_encoder_stays_the_seeded_one_and_the_unet_learns(tmp_path):
    _, text_encoder, unet = _run(tmp_path, "frozen")
    torch.manual_seed(0)
    fresh = build_text_encoder(TINY, build_tokenizer())
    assert all(
        torch.equal(a, b)
        for a, b in zip(text_encoder.state_dict().values(), fresh.state_dict().values())
    )


def test_warm_start_begins_from_the_given_runs_ema_unet(tmp_path):
    _, _, first = _run(tmp_path, "first")
    _, _, again = _run(tmp_path, "warm", init_unet=str(tmp_path / "first"), steps=0)
    assert all(
        torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values())
    )


def test_x4_size_gives_16x16_latents_a_plain_top_level_and_no_temporal_dropout(tmp_path):
    from mcm_demo.embedded.config import TEACHER_SIZES

    x4 = TEACHER_SIZES["x4"]
    tiny = TeacherConfig(
        latent_channels=x4.latent_channels,
        vae_channels=(8, 8, 8),
        text_hidden=16,
        text_layers=1,
        unet_channels=(8, 8, 16),
        unet_plain_levels=1,
        unet_heads=2,
        unet_temporal_dropout=x4.unet_temporal_dropout,
        unet_spatial_positions=False,
        text_embedding_std=None,
    )
    vae, unet = build_vae(tiny).eval(), build_unet(tiny)
    with torch.no_grad():
        latents = vae.encode(torch.zeros(1, 3, 64, 64)).latent_dist.mode()
    assert latents.shape[-2:] == (tiny.latent_size, tiny.latent_size) == (16, 16)
    assert unet.config.sample_size == 16
    assert (
        unet.config.down_block_types[0] == "DownBlock3D"
        and unet.config.up_block_types[-1] == "UpBlock3D"
    )
    assert all(m.p == 0 for m in unet.modules() if isinstance(m, torch.nn.Dropout))
    # the stage trains on it end to end (latent cache, 16×16 object masks, a step)
    cfg = UNetTrainConfig(steps=1, batch=2, num_clips=2, run_dir=str(tmp_path / "x4"), save_every=1)
    train_unet(cfg, vae, tiny, log=lambda *a: None)


def test_x4_text_encoder_keeps_each_motion_word_apart_from_the_words_before_it():
    """A motion word's state must say which motion, whatever colour and shape came before it."""
    from mcm_demo.embedded.config import TEACHER_SIZES
    from mcm_demo.pipeline import encode_prompts

    torch.manual_seed(0)
    tokenizer = build_tokenizer()
    encoder = build_text_encoder(TEACHER_SIZES["x4"], tokenizer).eval()
    prefixes = ["a red circle", "a cyan star", "a yellow cross"]
    with torch.no_grad():
        states = {
            d: encode_prompts(
                tokenizer, encoder, [f"{p} moving {d} on a gray background" for p in prefixes]
            )[:, 5]
            for d in ("left", "right")
        }
    same_word = torch.cdist(states["left"], states["left"]).max()
    other_word = torch.cdist(states["left"], states["right"]).min()
    assert same_word < other_word / 2


def test_high_noise_share_draws_from_the_noisiest_timesteps_and_share_0_replays_old_runs():
    from mcm_demo.train.teacher import draw_timesteps

    plain = torch.randint(0, 1000, (4096,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(draw_timesteps(4096, 1000, torch.Generator().manual_seed(3)), plain)
    assert draw_timesteps(4096, 1000, torch.Generator().manual_seed(3), 1.0).min() >= 600
    half = draw_timesteps(4096, 1000, torch.Generator().manual_seed(3), 0.5)
    assert (
        0.65 < (half >= 600).float().mean() < 0.75
    )  # half from the top 40%, plus 40% of the uniform half


def test_spatial_positions_start_at_zero_reach_the_output_and_survive_save_and_reload(tmp_path):
    import dataclasses

    from mcm_demo.embedded.unet import UNet3DWithFramePositions

    torch.manual_seed(0)
    plain = build_unet(TINY).eval()
    torch.manual_seed(0)
    unet = build_unet(dataclasses.replace(TINY, unet_spatial_positions=True)).eval()
    x, t, text = (
        torch.zeros(1, 8, 8, 8, 8),
        torch.tensor([999]),
        torch.randn(1, 24, TINY.text_hidden),
    )
    with torch.no_grad():
        assert torch.equal(
            unet(x, t, text).sample, plain(x, t, text).sample
        )  # a warm start is exact
        unet.spatial_position_embedding.normal_()
        moved = unet(x, t, text).sample
        assert not torch.allclose(moved, plain(x, t, text).sample)
        unet.save_pretrained(tmp_path / "unet")
        again = UNet3DWithFramePositions.from_pretrained(tmp_path / "unet").eval()
        # the same weights, reloaded; float kernels may round differently on freshly loaded tensors
        # (7e-7 seen)
        assert torch.allclose(again(x, t, text).sample, moved, atol=1e-5, rtol=0)
        assert (
            again(torch.zeros(1, 8, 8, 16, 16), t, text).sample.shape[-1] == 16
        )  # other sizes stretch the grid


def test_warm_start_adds_spatial_positions_to_a_unet_without_them(tmp_path):
    import dataclasses

    _run(tmp_path, "first")
    torch.manual_seed(0)
    cfg = UNetTrainConfig(
        steps=0,
        batch=2,
        num_clips=4,
        run_dir=str(tmp_path / "warm"),
        init_unet=str(tmp_path / "first"),
    )
    _, _, unet = train_unet(
        cfg,
        build_vae(TINY).eval(),
        dataclasses.replace(TINY, unet_spatial_positions=True),
        log=lambda *a: None,
    )
    assert torch.count_nonzero(unet.spatial_position_embedding) == 0


def test_warm_start_into_a_unet_with_cross_attention_at_its_plain_level_starts_exact_then_uses_it(
    tmp_path,
):
    """`train teacher --plain-levels 0 --init-unet <plain-top run>`: the grown attention starts as a
    no-op."""
    import dataclasses

    from safetensors.torch import load_file, save_file

    from mcm_demo.train.teacher import start_new_attention_as_no_ops

    torch.manual_seed(0)
    first = build_unet(dataclasses.replace(TINY, unet_plain_levels=1))
    first.load_state_dict(
        {k: v + 0.01 * torch.randn_like(v) for k, v in first.state_dict().items()}
    )  # not the init
    grown = build_unet(TINY)
    missing, unexpected = grown.load_state_dict(first.state_dict(), strict=False)
    covered = start_new_attention_as_no_ops(grown, missing)
    assert not unexpected and sorted(covered) == sorted(missing)
    assert {k.split(".")[0] + "." + k.split(".")[1] for k in covered} == {
        "down_blocks.0",
        "up_blocks.2",
    }
    x, t, text = (
        torch.randn(2, 8, 8, 8, 8),
        torch.tensor([10, 900]),
        torch.randn(2, 24, TINY.text_hidden),
    )
    with torch.no_grad():
        assert torch.allclose(
            grown.eval()(x, t, text).sample, first.eval()(x, t, text).sample, atol=1e-6
        )
    # the training stage accepts the warm start and trains the new attention
    (tmp_path / "plain-run").mkdir()
    save_file(first.state_dict(), str(tmp_path / "plain-run" / "ema_unet.safetensors"))
    vae = build_vae(TINY).eval()
    cfg = UNetTrainConfig(
        steps=2,
        batch=2,
        num_clips=4,
        run_dir=str(tmp_path / "grown"),
        save_every=1,
        init_unet=str(tmp_path / "plain-run"),
        ema_decay=0.0,
    )
    train_unet(cfg, vae, TINY, log=lambda *a: None)
    trained = load_file(str(tmp_path / "grown" / "unet.safetensors"))
    assert trained["down_blocks.0.attentions.0.proj_out.weight"].abs().sum() > 0


def test_defaults_rebuild_the_shipped_teacher():
    """`train teacher` with no size or layout flags builds exactly the shipped teacher's
    UNet, VAE and text encoder configs (weights/teacher)."""
    import json
    import os

    from mcm_demo.catalog import DEFAULT_WEIGHTS
    from mcm_demo.train.components import teacher_config

    cfg = teacher_config()
    shipped = os.path.join(DEFAULT_WEIGHTS, "teacher")

    def config(folder):
        with open(os.path.join(shipped, folder, "config.json")) as f:
            return {k: v for k, v in json.load(f).items() if not k.startswith("_")}

    def same(built, folder):
        # retired research options, and the VAE's measured latent scale (set after training)
        retired = {"frame_positions_in_resnets", "caption_in_time_embedding", "scaling_factor"}
        want = {k: v for k, v in config(folder).items() if k not in retired}
        got = json.loads(
            json.dumps({k: v for k, v in dict(built.config).items() if not k.startswith("_")})
        )
        assert {k: got.get(k) for k in want} == want, folder

    same(build_unet(cfg), "unet")
    same(build_vae(cfg), "vae")
    text = build_text_encoder(cfg, build_tokenizer()).config.to_dict()
    for key in (
        "hidden_size",
        "num_hidden_layers",
        "intermediate_size",
        "vocab_size",
        "max_position_embeddings",
    ):
        assert text[key] == config("text_encoder")[key], key


def test_a_still_skips_every_temporal_layer():
    torch.manual_seed(0)
    unet = build_unet(TINY).eval()
    still, text = torch.randn(2, 8, 1, 8, 8), torch.randn(2, 24, 16)
    before = unet(still, torch.tensor([10, 500]), text).sample
    with torch.no_grad():  # scramble every temporal layer: a still must not notice
        for name, p in unet.named_parameters():
            if "temp" in name or "transformer_in" in name:
                p.add_(torch.randn_like(p))
    assert torch.equal(before, unet(still, torch.tensor([10, 500]), text).sample)
    clip = torch.randn(2, 8, 4, 8, 8)
    assert unet(clip, torch.tensor([10, 500]), text).sample.shape == clip.shape


def test_stills_train_beside_clips_and_a_snapshot_resumes_the_run(tmp_path):
    from mcm_demo.train.checkpoint import save_snapshot

    _, _, first = _run(tmp_path, "joint", image_batch=3)
    state = save_snapshot(str(tmp_path / "joint"), str(tmp_path / "snapshot"))
    assert state["step"] == 2
    # a fresh run folder (a new machine) continues from the snapshot's step and weights
    _, _, again = _run(
        tmp_path, "resumed", image_batch=3, steps=2, resume_from=str(tmp_path / "snapshot")
    )
    for a, b in zip(first.state_dict().values(), again.state_dict().values()):
        assert torch.allclose(a, b.to(a.dtype), atol=1e-3)  # the snapshot is fp16
