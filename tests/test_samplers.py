import pytest
import torch
from diffusers import LCMScheduler

from mcm_demo.embedded.config import build_noise_schedule
from mcm_demo.samplers import sample_consistency, sample_ddim, sample_dpmpp_2m
from mcm_demo.schedule import (
    alpha_sigma,
    consistency_output,
    consistency_timesteps,
    spaced_timesteps,
)

ALPHAS = build_noise_schedule().alphas_cumprod.double()


def gaussian_denoiser(scale: float):
    """The exact E[x0 | x_t] when the data is N(0, scale²): samplers must reproduce that spread."""

    def denoise(x, t):
        a = float(ALPHAS[t])
        return (a**0.5) * scale**2 / (a * scale**2 + (1 - a)) * x

    return denoise


@pytest.mark.parametrize("sampler", [sample_ddim, sample_dpmpp_2m])
def test_samplers_converge_to_the_data_distribution(sampler):
    x = torch.randn(20000, generator=torch.Generator().manual_seed(0)).double()
    errors = []
    for steps in (25, 200):
        out = sampler(gaussian_denoiser(0.5), x, spaced_timesteps(steps), ALPHAS)
        assert torch.isfinite(out).all()
        errors.append(abs(out.std().item() - 0.5))
    assert errors[1] < errors[0] and errors[1] < 0.01


def test_dpmpp_is_more_accurate_than_ddim_at_few_steps():
    x = torch.randn(20000, generator=torch.Generator().manual_seed(0)).double()
    ddim = sample_ddim(gaussian_denoiser(0.5), x, spaced_timesteps(8), ALPHAS).std().item()
    dpm = sample_dpmpp_2m(gaussian_denoiser(0.5), x, spaced_timesteps(8), ALPHAS).std().item()
    assert abs(dpm - 0.5) < abs(ddim - 0.5)


def test_callback_gets_the_denoised_estimate_each_step():
    seen = []
    x = torch.randn(4, 3)
    sample_ddim(gaussian_denoiser(1.0), x, spaced_timesteps(4), ALPHAS, callback=seen.append)
    assert [d["i"] for d in seen] == [0, 1, 2, 3] and seen[0]["t"] == 999
    assert all(d["denoised"].shape == x.shape for d in seen)


def test_one_step_lands_on_the_denoised_estimate():
    x = torch.randn(8).double()
    den = gaussian_denoiser(0.7)
    for sampler in (sample_ddim, sample_dpmpp_2m):
        assert torch.allclose(sampler(den, x, [999], ALPHAS), den(x, 999))


def test_timestep_grids():
    assert spaced_timesteps(1) == [999]
    assert spaced_timesteps(4) == [999, 749, 499, 249]
    assert consistency_timesteps(4) == [999, 759, 499, 259]  # diffusers' LCMScheduler
    assert consistency_timesteps(4, spacing="skip") == [999, 759, 519, 279]  # LCM's first
    assert consistency_timesteps(2) == consistency_timesteps(2, spacing="skip") == [999, 499]
    with pytest.raises(ValueError):
        spaced_timesteps(0)


def test_consistency_sampler_renoises_between_steps():
    calls = []
    den = lambda x, t: (calls.append(t), torch.zeros_like(x))[1]
    out = sample_consistency(
        den, torch.randn(5), consistency_timesteps(2), ALPHAS, torch.Generator().manual_seed(0)
    )
    assert calls == [999, 499] and torch.equal(out, torch.zeros(5))


def test_consistency_sampling_on_another_device_than_its_generator():
    """On a GPU the pipeline's generator stays on the CPU (same seed, same clip on any device)
    while the latents and the schedule's lookups live on the device; `meta` stands in for it."""
    x = torch.randn(1, 4, 2, 3, 3).to("meta")
    steps = torch.tensor([999])  # the pipeline's CPU timesteps
    alpha, sigma = alpha_sigma(ALPHAS.float(), steps, x)
    assert alpha.device.type == sigma.device.type == "meta"
    out = sample_consistency(
        lambda x, t: x * 0.5, x, consistency_timesteps(4), ALPHAS, torch.Generator().manual_seed(0)
    )
    assert out.device.type == "meta" and out.shape == x.shape


# The real teachers' schedulers as the official MCM demo builds its LCMScheduler: ModelScope's
# (scaled-linear betas, ε) and AnimateDiff's (linear betas 0.00085-0.012, ε); and the embedded
# teacher's (zero terminal SNR, v).
LCM_CONFIGS = {
    "modelscope": dict(beta_schedule="scaled_linear"),
    "animatediff": dict(beta_schedule="linear", beta_start=0.00085, beta_end=0.012),
    "embedded": dict(
        beta_schedule="scaled_linear", prediction_type="v_prediction", rescale_betas_zero_snr=True
    ),
}


def _fake_unet(x, t):
    """Any smooth function of (x, t) stands in for the UNet: both loops must treat it alike."""
    return 0.7 * x.roll(1, dims=-1) + 0.001 * float(t) - 0.3


@pytest.mark.parametrize("config", sorted(LCM_CONFIGS))
@pytest.mark.parametrize("steps", range(1, 9))
def test_consistency_sampling_equals_diffusers_lcm_scheduler(config, steps):
    """Our timesteps and every step (boundary scalings, x0, re-noising with the generator's
    draws) against diffusers' own `LCMScheduler(timestep_scaling=4)`, as the official demo
    samples the published adapters."""
    scheduler = LCMScheduler(timestep_scaling=4.0, **LCM_CONFIGS[config])
    scheduler.set_timesteps(steps)
    assert consistency_timesteps(steps) == scheduler.timesteps.tolist()

    alphas, prediction = scheduler.alphas_cumprod, scheduler.config.prediction_type
    x = torch.randn(2, 4, 3, 5, 5, generator=torch.Generator().manual_seed(steps))
    generator = torch.Generator().manual_seed(1)
    reference = x.clone()
    for t in scheduler.timesteps:
        out = _fake_unet(reference, t)
        reference = scheduler.step(out, t, reference, generator=generator).prev_sample

    def denoise(x, t):
        ts = torch.tensor([t] * x.shape[0])
        return consistency_output(_fake_unet(x, t), x, ts, alphas, prediction).float()

    ours = sample_consistency(
        denoise,
        x,
        consistency_timesteps(steps),
        alphas.double(),
        generator=torch.Generator().manual_seed(1),
    )
    # ours re-noises with a float64 ᾱ table, diffusers with float32: 1e-5-level differences
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-4)
