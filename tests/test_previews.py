"""Cheap per-step previews: the shipped tiny decoder, the linear fallback, the service's timing."""

import json
import os

import numpy as np
import pytest
import torch

from mcm_demo import catalog, previews
from mcm_demo.app import bench, service
from mcm_demo.metrics.scores import reference_clips
from mcm_demo.pipeline import TextToVideoPipeline, encode_clips
from mcm_demo.train.preview import psnr
from mcm_demo.video_io import probe

SHIPPED = catalog.DEFAULT_WEIGHTS / "preview" / "tiny-decoder.safetensors"


@pytest.fixture(scope="module")
def teacher():
    return TextToVideoPipeline.from_pretrained(str(catalog.DEFAULT_WEIGHTS / "teacher"))


def test_the_shipped_tiny_decoder_reads_held_out_clips_as_the_vae_does(teacher):
    assert SHIPPED.stat().st_size < 400_000
    clips, _ = reference_clips(4, seed=4242)
    latents = encode_clips(teacher.vae, clips)
    decoder = previews.TinyDecoder.load(str(SHIPPED))
    frames = decoder(latents)
    assert frames.shape == (4, 8, 64, 64, 3)
    assert psnr(frames, teacher.decode_latents(latents)) > 24  # 29.2 dB on 64 clips


def test_a_tiny_decoder_saves_and_loads_in_fp16(tmp_path):
    torch.manual_seed(0)
    decoder = previews.TinyDecoder(latent_channels=8, scale=2, width=8).eval()
    decoder.save(str(tmp_path / "d.safetensors"))
    loaded = previews.TinyDecoder.load(str(tmp_path / "d.safetensors"))
    z = torch.randn(1, 8, 3, 4, 4)
    assert loaded(z).shape == (1, 3, 8, 8, 3)
    assert np.abs(loaded(z) - decoder(z)).max() < 1e-2


def test_a_linear_preview_fits_any_vae_and_has_the_clip_shape(tiny_pipeline, tmp_path):
    preview = previews.fit_to_vae(tiny_pipeline.vae, side=64, count=8)
    preview.save(str(tmp_path / "l.safetensors"))
    preview = previews.LinearPreview.load(str(tmp_path / "l.safetensors"))
    z = torch.randn(1, tiny_pipeline.unet.config.in_channels, 3, 4, 4)
    assert preview(z).shape == tiny_pipeline.decode_latents(z).shape


def test_a_real_teacher_previews_with_taesd_when_cached_else_a_linear_map(
    tiny_pipeline, tmp_path, monkeypatch
):
    from diffusers import AutoencoderTiny

    def not_cached(*args, **kwargs):
        raise FileNotFoundError("offline")

    monkeypatch.setattr(catalog, "_snapshot", not_cached)
    fallback = catalog.Catalog()._preview_decoder("modelscope", tiny_pipeline)
    assert isinstance(fallback, previews.LinearPreview)

    tiny = AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
        latent_channels=tiny_pipeline.unet.config.in_channels,
    )
    tiny.save_pretrained(tmp_path / "taesd")
    monkeypatch.setattr(catalog, "_snapshot", lambda repo, *a, **k: str(tmp_path / "taesd"))
    decoder = catalog.Catalog()._preview_decoder("modelscope", tiny_pipeline)
    assert isinstance(decoder, previews.TinyPreview)
    frames = decoder(torch.randn(1, tiny_pipeline.unet.config.in_channels, 2, 4, 4))
    assert frames.shape[:2] == (1, 2) and frames.min() >= 0 and frames.max() <= 1


def test_a_result_is_timed_from_the_start_to_its_mp4(with_students):
    req = service.Request("a red circle moving left on a black background", "lcm", 2)
    events = list(with_students.stream(req))
    assert [type(e).__name__ for e in events] == ["Preview", "Preview", "Result"]
    result = events[-1]
    assert probe(result.video)["frames"] == 8
    assert result.first_preview_seconds == events[0].seconds <= events[1].seconds
    assert result.model_seconds + result.preview_seconds <= result.seconds
    assert events[0].frames.shape == (8, 64, 64, 3)
    os.remove(result.video)


def test_bench_prints_each_cells_speedup_and_limit(with_students, monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "BASELINE_STEPS", 2)  # the teacher's 50 steps would be slow here
    lines = []
    results = bench.bench_stream(with_students, ["lcm"], [1], repeats=1, log=lines.append)
    cells = results["cells"]
    assert set(cells) == {"lcm@1", "teacher@2"}
    for key in ("first_preview", "end_to_end", "model_time", "peak_rss_mb", "speedup", "limit"):
        assert np.isfinite(cells["lcm@1"][key])
    assert cells["teacher@2"]["speedup"] == 1.0
    assert any(line.startswith("| lcm | 1 |") for line in lines)
    json.dumps(results)  # the --json form
