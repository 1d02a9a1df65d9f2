"""Long clips in windows (FreeNoise) and prompt travel, on tiny UNet3D and UNetMotion models."""

import types

import numpy as np
import pytest
import torch
from diffusers.models.attention import FreeNoiseTransformerBlock
from diffusers.models.resnet import TemporalConvLayer
from diffusers.pipelines.free_noise_utils import AnimateDiffFreeNoiseMixin

from mcm_demo import PipelineInputError, catalog
from mcm_demo.free_noise import spatial_layers, temporal_layers, windowed_temporal_layers
from mcm_demo.windows import (
    Windowing,
    frame_windows,
    fusion_weights,
    parse_prompt_schedule,
    reschedule_noise,
    travel_weights,
    window_weights,
)

PROMPT = "a red circle moving left on a black background"
OTHER = "a blue star moving up on a white background"


def _seeded(**kw):
    return dict(num_inference_steps=2, generator=torch.Generator().manual_seed(0), **kw)


# -- the arithmetic is diffusers' ----------------------------------------------------------
@pytest.mark.parametrize("length", [4, 5, 8, 16])
@pytest.mark.parametrize("weighting", ["pyramid", "flat"])
def test_window_weights_are_diffusers_free_noise_weights(length, weighting):
    block = FreeNoiseTransformerBlock.__new__(FreeNoiseTransformerBlock)
    expected = block._get_frame_weights(length, weighting)
    assert window_weights(length, weighting).tolist() == expected


@pytest.mark.parametrize("length", [8, 16])
def test_hann_weights_hand_over_almost_nothing_at_a_windows_edge(length):
    weights = window_weights(length, "hann")
    assert torch.allclose(weights, weights.flip(0))
    assert weights[0] < 0.05 * weights.max()
    # at half-window strides the overlapping windows' weights sum to 1 on every frame
    half = length // 2
    assert torch.allclose(weights[:half] + weights[half:], torch.ones(half), atol=1e-6)
    shares = fusion_weights(4 * length, Windowing(length, half, "hann"))
    _, first = shares[0]
    assert torch.allclose(first[half:], weights[half:], atol=1e-6)  # no renormalising needed


@pytest.mark.parametrize("num_frames", [8, 12, 19, 24, 64])
def test_windows_are_diffusers_windows_and_cover_every_frame(num_frames):
    block = FreeNoiseTransformerBlock.__new__(FreeNoiseTransformerBlock)
    block.context_length, block.context_stride = 8, 4
    expected = block._get_frame_indices(num_frames)
    if expected[-1][1] != num_frames:  # diffusers adds the window flush with the end in forward
        expected.append((num_frames - 8, num_frames))
    assert frame_windows(num_frames, 8, 4) == expected
    shares = torch.zeros(num_frames)
    for (start, end), share in fusion_weights(num_frames, Windowing(8)):
        shares[start:end] += share
    assert torch.allclose(shares, torch.ones(num_frames))


def test_noise_rescheduling_is_diffusers_shuffle_context():
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(1, 2, 27, 3, 3, generator=generator)
    ours = reschedule_noise(noise, Windowing(8, 4), generator)
    mixin = types.SimpleNamespace(
        _free_noise_context_length=8,
        _free_noise_context_stride=4,
        _free_noise_noise_type="shuffle_context",
        vae_scale_factor=1,
    )
    theirs = AnimateDiffFreeNoiseMixin._prepare_latents_free_noise(
        mixin, 1, 2, 27, 3, 3, torch.float32, "cpu", torch.Generator().manual_seed(0)
    )
    assert torch.equal(ours, theirs) and torch.equal(ours[:, :, :8], noise[:, :, :8])
    # every later frame's noise is one of the first window's frames
    firsts = {tuple(noise[0, :, f].flatten().tolist()) for f in range(8)}
    assert all(tuple(ours[0, :, f].flatten().tolist()) in firsts for f in range(27))


@torch.no_grad()
def test_windows_fuse_with_the_documented_pyramid_weights():
    """12 frames, windows of 8 every 4: frames 4–7 are both windows' weighted mean, the pyramid
    [1 2 3 4 4 3 2 1] giving the first window 4/5, 3/5, 2/5, 1/5 of them."""
    torch.manual_seed(0)
    layer = TemporalConvLayer(8, 8, norm_num_groups=4)
    torch.nn.init.normal_(layer.conv4[-1].weight)  # diffusers starts it at zero (an identity)
    x = torch.randn(2 * 12, 8, 4, 4)
    with windowed_temporal_layers(layer, Windowing(8, 4), 12):
        fused = layer(x, num_frames=12).view(2, 12, 8, 4, 4)
    frames = x.view(2, 12, 8, 4, 4)
    first = layer(frames[:, :8].reshape(-1, 8, 4, 4), num_frames=8).view(2, 8, 8, 4, 4)
    second = layer(frames[:, 4:].reshape(-1, 8, 4, 4), num_frames=8).view(2, 8, 8, 4, 4)
    share = torch.tensor([4, 3, 2, 1]) / 5
    expected = torch.cat(
        [
            first[:, :4],
            share[None, :, None, None, None] * first[:, 4:]
            + (1 - share)[None, :, None, None, None] * second[:, :4],
            second[:, 4:],
        ],
        1,
    )
    assert torch.allclose(fused, expected, atol=1e-6)
    assert not torch.allclose(fused, layer(x, num_frames=12).view_as(fused), atol=1e-4)


# -- one window is today's clip exactly -----------------------------------------------------
def test_one_window_is_todays_output_exactly_unet3d(tiny_pipeline, modelscope_folder):
    windowed = tiny_pipeline(PROMPT, num_frames=8, windowing=Windowing(8), **_seeded())
    whole = tiny_pipeline(PROMPT, num_frames=8, windowing=False, **_seeded())
    default = tiny_pipeline(PROMPT, num_frames=8, **_seeded())
    assert np.array_equal(windowed, whole) and np.array_equal(default, whole)
    modelscope = catalog.Catalog().load_pipeline(str(modelscope_folder))
    a = modelscope(PROMPT, num_frames=16, windowing=Windowing(16), **_seeded())
    assert np.array_equal(a, modelscope(PROMPT, num_frames=16, **_seeded()))


def test_one_window_is_todays_output_exactly_unet_motion(animatediff_folders):
    pipe = catalog.assemble_animatediff(*map(str, animatediff_folders))
    a = pipe(PROMPT, num_frames=6, windowing=Windowing(6), **_seeded())
    assert np.array_equal(a, pipe(PROMPT, num_frames=6, **_seeded()))


# -- long clips: temporal layers in windows, spatial layers once per frame ------------------
def _frames_seen(unet):
    """Record how many frames the temporal layers' insides and the first spatial resnet get."""
    seen = {"temporal": set(), "spatial_rows": []}

    def record(frame_dim):
        def hook(module, args, kwargs):
            x = args[0] if args else kwargs["input"]
            seen["temporal"].add(x.shape[frame_dim])

        return hook

    hooks = []
    for layer in temporal_layers(unet):
        inner, dim = (
            (layer.conv1, 2) if isinstance(layer, TemporalConvLayer) else (layer.proj_in, 1)
        )
        hooks.append(inner.register_forward_pre_hook(record(dim), with_kwargs=True))
    resnet = unet.down_blocks[0].resnets[0]
    hooks.append(
        resnet.register_forward_pre_hook(
            lambda m, a, kw: seen["spatial_rows"].append(
                (a or [kw.get("input_tensor")])[0].shape[0]
            ),
            with_kwargs=True,
        )
    )
    return seen, hooks


@pytest.mark.parametrize("teacher", ["embedded", "modelscope", "animatediff"])
def test_long_clip_runs_in_windows_of_the_trained_length(
    teacher, tiny_pipeline, modelscope_folder, animatediff_folders
):
    pipe = {
        "embedded": lambda: tiny_pipeline,
        "modelscope": lambda: catalog.Catalog().load_pipeline(str(modelscope_folder)),
        "animatediff": lambda: catalog.assemble_animatediff(*map(str, animatediff_folders)),
    }[teacher]()
    window = 8 if teacher == "embedded" else 16
    seen, hooks = _frames_seen(pipe.unet)
    try:
        frames = pipe(PROMPT, num_frames=2 * window + 3, guidance_scale=1.0, **_seeded())
    finally:
        for hook in hooks:
            hook.remove()
    assert frames.shape[1] == 2 * window + 3 and np.isfinite(frames).all()
    assert seen["temporal"] == {window}  # no temporal layer saw more than a window
    assert set(seen["spatial_rows"]) == {2 * window + 3}  # the spatial ones: every frame once
    if teacher == "animatediff":  # whole, its frame-position table (16 here) is too short
        with pytest.raises(RuntimeError):
            pipe(PROMPT, num_frames=2 * window + 3, windowing=False, **_seeded())
        return
    whole = pipe(
        PROMPT, num_frames=2 * window + 3, guidance_scale=1.0, windowing=False, **_seeded()
    )
    assert not np.allclose(frames, whole, atol=1e-4)


def test_windowed_student_with_lora_on_the_motion_modules(animatediff_folders):
    from mcm_demo.adapters import PUBLISHED_TARGET_MODULES, attach_lora

    pipe = catalog.assemble_animatediff(*map(str, animatediff_folders))
    attach_lora(pipe.unet, "s", rank=4, init="gaussian", target_modules=PUBLISHED_TARGET_MODULES)
    pipe.set_adapter("s")
    clip = pipe(PROMPT, sampler="consistency", num_frames=20, **_seeded())
    assert clip.shape[1] == 20 and np.isfinite(clip).all()


# -- long clips: a few frames per pass, so memory does not grow with the clip ------------------
def _pipe(teacher, tiny_pipeline, modelscope_folder, animatediff_folders):
    return {
        "embedded": lambda: tiny_pipeline,
        "modelscope": lambda: catalog.Catalog().load_pipeline(str(modelscope_folder)),
        "animatediff": lambda: catalog.assemble_animatediff(*map(str, animatediff_folders)),
    }[teacher]()


@pytest.mark.parametrize("teacher", ["embedded", "modelscope", "animatediff"])
@pytest.mark.parametrize("travel", [False, True])
def test_a_few_frames_per_pass_give_the_same_clip(
    teacher, travel, tiny_pipeline, modelscope_folder, animatediff_folders
):
    """Windows a few at a time and the spatial layers in chunks (the default past one window)
    are exact: the same latents as all frames in one pass, with guidance (two clips' rows) and
    with one text per frame. The temporal layers see `frames_per_pass // window` windows (at
    least one) per pass, the spatial ones at most `frames_per_pass` rows; nothing stays wrapped
    after the call."""
    pipe = _pipe(teacher, tiny_pipeline, modelscope_folder, animatediff_folders)
    window = 8 if teacher == "embedded" else 16
    frames = 2 * window + 3  # 4 windows
    prompt = {0: PROMPT, window: OTHER} if travel else PROMPT
    spatial, temporal = spatial_layers(pipe.unet), temporal_layers(pipe.unet)
    before = [layer.__dict__.get("forward") for layer in [*spatial, *temporal]]
    rows = {"spatial": [], "temporal": []}  # rows a pass holds (guidance: two clips)

    def record(kind):
        return lambda module, args: rows[kind].append(args[0].shape[0])

    hooks = [spatial[0].norm1.register_forward_pre_hook(record("spatial"))]
    hooks += [next(t.children()).register_forward_pre_hook(record("temporal")) for t in temporal]

    def run(per_pass):
        rows["spatial"], rows["temporal"] = [], []
        windowing = Windowing(window, frames_per_pass=per_pass)
        out = pipe(
            prompt, num_frames=frames, windowing=windowing, output_type="latent", **_seeded()
        )
        return out, max(rows["spatial"]), max(rows["temporal"]) // 2  # windows per pass

    try:
        whole, spatial_rows, windows_per_pass = run(0)
        assert (spatial_rows, windows_per_pass) == (2 * frames, 4)
        for per_pass, passes in [(5, 1), (window, 1), (2 * window, 2), (None, 4)]:
            latents, spatial_rows, windows_per_pass = run(per_pass)
            assert spatial_rows == min(per_pass or 4 * window, 2 * frames)
            assert windows_per_pass == passes
            # float rounding (a tiny random UNet: |latents| up to ~120)
            assert (latents - whole).abs().max() <= 1e-5 * whole.abs().max()
    finally:
        for hook in hooks:
            hook.remove()
    after = [layer.__dict__.get("forward") for layer in [*spatial, *temporal]]
    assert spatial and temporal and all(a is b for a, b in zip(before, after))


def test_window_stride_is_checked_against_the_trained_window(tiny_pipeline):
    from mcm_demo.app import service
    from mcm_demo.pipeline import long_clip_windowing

    unet = tiny_pipeline.unet
    assert (
        long_clip_windowing(unet, 20, 3) == Windowing(8, 3) == Windowing(8, 3, frames_per_pass=32)
    )
    assert long_clip_windowing(unet, 20) == Windowing(8, 4) and long_clip_windowing(unet, 8) is None
    for bad in (0, 9):
        with pytest.raises(PipelineInputError, match="stride must be from 1 to 8 frames"):
            long_clip_windowing(unet, 20, bad)
        req = service.Request(PROMPT, "lcm", 1, frames=24, window_stride=bad)
        with pytest.raises(PipelineInputError, match="stride must be from 1 to 8 frames"):
            service.check_request(req)
    assert (
        service.check_request(service.Request(PROMPT, "lcm", 1, window_stride=3)).window_stride == 3
    )


def test_frames_per_pass_is_a_frame_count():
    assert Windowing(8).frames_per_pass == 32 and Windowing(16).frames_per_pass == 64
    assert Windowing(16, frames_per_pass=0).frames_per_pass == 0
    with pytest.raises(ValueError, match="frame count"):
        Windowing(8, frames_per_pass=-1)


# -- prompt travel ---------------------------------------------------------------------------
def test_prompt_schedule_parses_and_says_what_is_wrong():
    assert parse_prompt_schedule("0: a red circle\n\n 32 : a blue star ") == {
        0: "a red circle",
        32: "a blue star",
    }
    for bad, words in [("a red circle", "FRAME: prompt"), ("0: a\n0: b", "two prompts")]:
        with pytest.raises(ValueError, match=words):
            parse_prompt_schedule(bad)


def test_travel_weights_interpolate_between_keyframes_and_hold_the_last():
    w = travel_weights([0, 4, 6], 9)
    assert w[0].tolist() == [1, 0, 0] and w[2].tolist() == [0.5, 0.5, 0]
    assert w[4].tolist() == [0, 1, 0] and w[5].tolist() == [0, 0.5, 0.5]
    assert w[6:].tolist() == [[0, 0, 1]] * 3
    ramped = travel_weights([0, 32], 40, ramp=8)  # A holds to frame 24, B is in from 32
    assert ramped[:25, 0].tolist() == [1.0] * 25 and ramped[28].tolist() == [0.5, 0.5]
    assert ramped[32:, 1].tolist() == [1.0] * 8


def test_prompt_travel_gives_each_frame_its_text(tiny_pipeline):
    rows = []
    attention = tiny_pipeline.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn2
    hook = attention.register_forward_pre_hook(
        lambda m, a, kw: rows.append(kw["encoder_hidden_states"]), with_kwargs=True
    )
    try:
        tiny_pipeline({0: PROMPT, 12: OTHER}, num_frames=16, guidance_scale=1.0, **_seeded())
    finally:
        hook.remove()
    a, b = tiny_pipeline.encode_prompt([PROMPT, OTHER])
    text = torch.cat(rows)[:16].view(16, *a.shape)  # the first step's, in chunks of 8 frames
    assert (
        torch.allclose(text[0], a) and torch.allclose(text[12], b) and torch.allclose(text[15], b)
    )
    assert torch.allclose(text[4], a) and torch.allclose(text[8], (a + b) / 2, atol=1e-6)
    one = tiny_pipeline({0: PROMPT}, num_frames=16, **_seeded())
    assert np.allclose(one, tiny_pipeline(PROMPT, num_frames=16, **_seeded()), atol=1e-5)


@pytest.mark.parametrize(
    "schedule, words",
    [
        ({3: PROMPT}, "starts at frame 0"),
        ({0: PROMPT, 20: OTHER}, "frames 0–15"),
        ({0: ""}, "empty"),
    ],
)
def test_prompt_travel_bad_input_says_why(tiny_pipeline, schedule, words):
    with pytest.raises(PipelineInputError, match=words):
        tiny_pipeline(schedule, num_frames=16, num_inference_steps=1)


# -- the command line and the page ------------------------------------------------------------
def test_cli_prompt_travel_writes_a_long_clip_and_bad_lines_say_why(tmp_path):
    import subprocess
    import sys

    from mcm_demo.video_io import probe

    def cli(*args):
        cmd = [sys.executable, "-m", "mcm_demo", "generate", "--adapter", "lcm", "--steps", "1"]
        return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=300)

    out = tmp_path / "travel.mp4"
    travel = ["--prompt", f"0: {PROMPT}", "--prompt", f"12: {OTHER}", "--window-stride", "3"]
    ok = cli(*travel, "--frames", "24", "--out", out)
    assert ok.returncode == 0, ok.stderr
    assert probe(str(out))["frames"] == 24
    bad = cli("--prompt", f"4: {PROMPT}", "--frames", "24", "--out", tmp_path / "x.mp4")
    assert bad.returncode == 2 and "starts at frame 0" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_page_makes_a_long_travelling_pair_with_its_side_by_side(with_students, monkeypatch):
    """Travel lines and the window stride from the *Long video* section reach both columns'
    windows (stride 3 of the embedded teacher's 8)."""
    from mcm_demo.app import service, ui

    windowings, windowing = [], service.long_clip_windowing

    def recorded(*args):
        windowings.append(windowing(*args))
        return windowings[-1]

    monkeypatch.setattr(service, "long_clip_windowing", recorded)
    updates = list(
        ui.compare(
            with_students,
            "ignored when travelling",
            "embedded",
            "webvid",
            1,
            0,
            False,
            24,
            8,
            "lcm",
            "mcm-webvid",
            3,
            5.0,
            speedup=False,
            travel=f"0: {PROMPT}\n12: {OTHER}",
            window_stride=3,
        )
    )
    job = updates[-1][8]
    assert [p.frames.shape[0] for p in job.panels] == [24, 24]
    assert windowings == [Windowing(8, 3)] * 2
    assert job.caption.startswith(f'"0: {PROMPT} → 12: {OTHER}"')
    req = service.Request(PROMPT, "lcm", 1, frames=24, travel=f"0: {PROMPT}\n30: {OTHER}")
    with pytest.raises(PipelineInputError, match="frames 0–23"):
        service.check_request(req, with_students.catalog)


def test_the_pages_stride_field_is_the_requests_and_the_baselines_window_stride():
    """0 or empty is the default (None: half a window); anything else goes to the request's
    check as sent. The speedup's baseline is windowed as the columns were, past one window."""
    from mcm_demo.app import handlers

    args = (PROMPT, "lcm", 1, 3, 0, 24, 5.0, "embedded", 8.0, "")
    assert handlers._column_request(*args).window_stride is None  # an API caller's default
    for field, stride in [(None, None), ("", None), (0, None), (3, 3), (9, 9), (-1, -1)]:
        assert handlers._column_request(*args, field).window_stride == stride

    class Baselines:
        def teacher_baseline_seconds(self, teacher, frames, guidance, run, window_stride):
            return window_stride

    for frames, field, stride in [(24, 3.0, 3), (24, 0, None), (24, None, None), (8, 3, None)]:
        assert handlers.page_baseline_seconds(Baselines(), "embedded", frames, 5.0, field) == stride


def test_the_long_video_benchmark_tracks_a_rendered_object():
    """benchmarks/long_video.py's readings on a real clip of the world: the object's track goes
    the prompted way with no reversal, and no step stands out at the window borders."""
    import importlib.util
    from pathlib import Path

    from mcm_demo.embedded.world import render_clip
    from mcm_demo.embedded.world.grammar import ObjectSpec, Scene

    path = Path(__file__).parents[1] / "benchmarks" / "long_video.py"
    spec = importlib.util.spec_from_file_location("long_video", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    scene = Scene("black", (ObjectSpec("circle", "red", "right"),))
    clip = render_clip(scene, "laion", 0)
    track = bench.object_track(clip)
    assert np.all(np.diff(track[:, 0]) > 1) and np.abs(np.diff(track[:, 1])).max() < 0.5
    assert bench.longest_reversal(track, bench.DIRECTIONS["right"]) == 0
    assert bench.longest_reversal(track[::-1], bench.DIRECTIONS["right"]) == len(track) - 1
    assert np.allclose(bench.border_ratios(track), 1, atol=0.1)
    jumped = track.copy()
    jumped[4:, 0] += 10  # a cut at the window border 3 → 4
    assert bench.border_ratios(jumped)[0] > 3
    every = bench.every_step([track, jumped])
    assert every["every step within 1.5x"] == (2 * 7 - 1) / (2 * 7)  # the cut, and nothing else
    assert every["clip's worst step"].startswith("median ")
