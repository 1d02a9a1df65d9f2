import numpy as np
import pytest
import torch

from mcm_demo import PipelineInputError, TextToVideoPipeline

PROMPT = "a red circle moving left on a black background"


@pytest.mark.parametrize("sampler", ["ddim", "dpm++"])
def test_tiny_pipeline_makes_frames(tiny_pipeline, sampler):
    frames = tiny_pipeline(
        PROMPT, num_inference_steps=3, sampler=sampler, generator=torch.Generator().manual_seed(0)
    )
    assert frames.shape == (1, 8, 64, 64, 3) and frames.dtype == np.float32
    assert frames.min() >= 0 and frames.max() <= 1


def test_same_seed_same_clip_and_batches_match_singles(tiny_pipeline):
    a = tiny_pipeline(PROMPT, num_inference_steps=2, generator=torch.Generator().manual_seed(1))
    b = tiny_pipeline(PROMPT, num_inference_steps=2, generator=torch.Generator().manual_seed(1))
    assert np.array_equal(a, b)
    # seeded: on the global stream the gap depended on the tests before (up to 6e-4 on 2 of 8
    # seeds; 8e-5 on this one)
    latents = torch.randn(2, 8, 8, 8, 8, generator=torch.Generator().manual_seed(0))
    both = tiny_pipeline([PROMPT, PROMPT], num_inference_steps=2, latents=latents)
    one = tiny_pipeline(PROMPT, num_inference_steps=2, latents=latents[1:])
    # float32 kernels block differently by batch size (5e-5 seen on one CPU, 3e-4 on another);
    # a clip that took another's noise or caption is off by ~1 (both[0] against one[0])
    assert np.allclose(both[1], one[0], atol=1e-3, rtol=0)
    assert np.abs(both[0] - one[0]).max() > 0.1


def test_callback_streams_a_denoised_estimate_per_step(tiny_pipeline):
    seen = []
    tiny_pipeline(PROMPT, num_inference_steps=4, callback=seen.append)
    assert [s["i"] for s in seen] == [0, 1, 2, 3]
    preview = tiny_pipeline.decode_latents(seen[-1]["denoised"])
    assert preview.shape == (1, 8, 64, 64, 3)


def test_save_and_reload_gives_identical_output(tiny_pipeline, tmp_path):
    tiny_pipeline.save_pretrained(tmp_path)
    reloaded = TextToVideoPipeline.from_pretrained(tmp_path)
    assert type(reloaded.unet).__name__ == "UNet3DWithFramePositions"
    assert list(tmp_path.glob("*/*.bin")) == []  # safetensors only
    kw = dict(num_inference_steps=2, generator=None)
    latents = torch.randn(1, 8, 8, 8, 8)
    assert np.array_equal(
        tiny_pipeline(PROMPT, latents=latents, **kw), reloaded(PROMPT, latents=latents, **kw)
    )


def test_frame_count_other_than_training_works(tiny_pipeline):
    assert tiny_pipeline(PROMPT, num_inference_steps=1, num_frames=16).shape[1] == 16


def test_guidance_changes_output_and_text_reaches_the_unet(tiny_pipeline):
    latents = torch.randn(1, 8, 8, 8, 8)
    a = tiny_pipeline(
        PROMPT, num_inference_steps=2, latents=latents, guidance_scale=1.0, output_type="latent"
    )
    b = tiny_pipeline(
        "a blue star spinning on a white background",
        num_inference_steps=2,
        latents=latents,
        guidance_scale=1.0,
        output_type="latent",
    )
    assert not torch.allclose(a, b)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(prompt=""), "empty"),
        (dict(prompt="   "), "empty"),
        (dict(prompt="x" * 10_000), "limit is"),
        (dict(prompt=PROMPT, num_inference_steps=0), "Steps"),
        (dict(prompt=PROMPT, num_inference_steps=1001), "Steps"),
        (dict(prompt=PROMPT, sampler="heun"), "sampler"),
        (dict(prompt=PROMPT, num_frames=1), "Frames"),
    ],
)
def test_bad_input_gets_a_clear_message(tiny_pipeline, kwargs, message):
    with pytest.raises(PipelineInputError, match=message):
        tiny_pipeline(**kwargs)


def test_unknown_words_do_not_break_the_tokenizer(tiny_pipeline):
    ids = tiny_pipeline.tokenizer(["a zebra dancing", "A RED Circle."]).input_ids
    unk = tiny_pipeline.tokenizer.unk_token_id
    assert (
        unk in ids[0] and ids[1][1:4] == tiny_pipeline.tokenizer(["a red circle"]).input_ids[0][1:4]
    )


def test_an_attached_adapter_keeps_a_sampling_model_in_eval_mode(tiny_pipeline):
    # the pipeline reads only the UNet's own flag before sampling; peft builds new layers in
    # training mode, where a temporal dropout would make two runs of one seed differ
    import copy

    from mcm_demo.adapters import attach_lora

    unet = copy.deepcopy(tiny_pipeline.unet).eval()
    attach_lora(unet, "probe", rank=4)
    assert not [name for name, m in unet.named_modules() if m.training]
    unet.train()
    attach_lora(unet, "probe2", rank=4)
    assert all(m.training for m in unet.modules())
