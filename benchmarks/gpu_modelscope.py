"""Few-step students against DDIM-50 + CFG at ModelScopeT2V's real size, on one GPU.

A random-weight pipeline with ModelScope's architecture (UNet3D 320-640-1280-1280 with 1024-wide
cross-attention, the SD VAE, a 23-layer 1024-wide CLIP text encoder) runs through the project's
own `TextToVideoPipeline` and samplers at 256 × 256 × 16 frames in fp16: the teacher's DDIM-50
with classifier-free guidance (batch 2 per step) against a consistency student at 1/2/4/8 steps
(a merged LoRA costs what the base UNet costs, so the base UNet stands in for it). Weights are
random because timing does not depend on them and nothing may be downloaded.

For each attention path (PyTorch SDPA's own choice, each SDPA kernel forced, xformers when it is
installed) and with/without `torch.compile`, it prints end-to-end seconds (prompt → decoded
frames), model seconds (sampling only), peak VRAM, each student's speedup over the teacher and
that speedup's evaluation-count limit measured in the same run:
limit(N) = (50 × t_unet(batch 2) + text(2 prompts) + decode) / (N × t_unet(batch 1) + text(1) +
decode).

    python benchmarks/gpu_modelscope.py --json out.json          # real size, needs a GPU
    python benchmarks/gpu_modelscope.py --size tiny --device cpu  # a smoke run anywhere
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from mcm_demo.embedded.text import build_tokenizer
from mcm_demo.pipeline import TextToVideoPipeline

# ali-vilab/text-to-video-ms-1.7b's unet/vae/text_encoder configs (architecture only)
SIZES = {
    "real": dict(
        unet=dict(
            block_out_channels=(320, 640, 1280, 1280),
            cross_attention_dim=1024,
            attention_head_dim=64,
            norm_num_groups=32,
            layers_per_block=2,
        ),
        down=("CrossAttnDownBlock3D",) * 3 + ("DownBlock3D",),
        up=("UpBlock3D",) + ("CrossAttnUpBlock3D",) * 3,
        vae=(128, 256, 512, 512),
        vae_groups=32,
        vae_layers=2,
        text=dict(
            hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16
        ),
        frames=16,
        pixels=256,
    ),
    "tiny": dict(
        unet=dict(
            block_out_channels=(32, 64),
            cross_attention_dim=32,
            attention_head_dim=8,
            norm_num_groups=8,
            layers_per_block=1,
        ),
        down=("CrossAttnDownBlock3D", "DownBlock3D"),
        up=("UpBlock3D", "CrossAttnUpBlock3D"),
        vae=(16, 32),
        vae_groups=8,
        vae_layers=1,
        text=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2),
        frames=4,
        pixels=32,
    ),
}
PROMPT = "a panda playing a guitar on a beach at sunset"


def build_pipeline(size: str, device: str, dtype: torch.dtype) -> TextToVideoPipeline:
    spec = SIZES[size]
    tokenizer = build_tokenizer()
    # built straight on the device: a 1.7B-parameter random init on the CPU takes minutes
    with torch.device(device):
        torch.manual_seed(0)
        unet = UNet3DConditionModel(
            sample_size=spec["pixels"] // 2 ** (len(spec["vae"]) - 1),
            in_channels=4,
            out_channels=4,
            down_block_types=spec["down"],
            up_block_types=spec["up"],
            **spec["unet"],
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            block_out_channels=spec["vae"],
            layers_per_block=spec["vae_layers"],
            norm_num_groups=spec["vae_groups"],
            down_block_types=("DownEncoderBlock2D",) * len(spec["vae"]),
            up_block_types=("UpDecoderBlock2D",) * len(spec["vae"]),
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                max_position_embeddings=77,
                pad_token_id=tokenizer.pad_token_id,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                **spec["text"],
            )
        )
    scheduler = DDIMScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        clip_sample=False,
        set_alpha_to_one=False,
    )
    pipe = TextToVideoPipeline(vae, text_encoder, tokenizer, unet, scheduler)
    return pipe.to(device, dtype)


def attention_paths(pipe, device: str) -> dict:
    """name → a context manager that makes the UNet's attention take that path (the VAE keeps
    SDPA's own choice: its one-head 512-wide mid-block attention fits no fused kernel)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    @contextlib.contextmanager
    def unet_only(backend):
        forward = pipe.unet.forward

        def forced(*args, **kwargs):
            with sdpa_kernel(backend):
                return forward(*args, **kwargs)

        pipe.unet.forward = forced
        try:
            yield
        finally:
            del pipe.unet.forward

    paths = {"sdpa (auto)": contextlib.nullcontext}
    if device.startswith("cuda"):
        for name, backend in [
            ("sdpa flash", SDPBackend.FLASH_ATTENTION),
            ("sdpa mem-efficient", SDPBackend.EFFICIENT_ATTENTION),
            ("sdpa cudnn", SDPBackend.CUDNN_ATTENTION),
            ("sdpa math", SDPBackend.MATH),
        ]:
            paths[name] = lambda backend=backend: unet_only(backend)
    return paths


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def random_latents(pipe, spec: dict, batch: int, dtype: torch.dtype) -> torch.Tensor:
    """Latents of one clip of `spec`'s size, `batch` times, on the UNet's device."""
    side = spec["pixels"] // pipe.vae_scale_factor
    shape = (batch, pipe.unet.config.in_channels, spec["frames"], side, side)
    return torch.randn(shape, device=pipe.unet.device, dtype=dtype)


def unet_call_seconds(pipe, spec: dict, batch: int, device: str, repeats: int) -> float:
    """One UNet evaluation at `batch` (2 = a guided teacher step), median of `repeats`."""
    unet, cfg = pipe.unet, pipe.unet.config
    x = random_latents(pipe, spec, batch, unet.dtype)
    text = torch.randn(batch, 77, cfg.cross_attention_dim, device=device, dtype=unet.dtype)
    t = torch.full((batch,), 500, device=device)
    with torch.no_grad():
        unet(x, t, encoder_hidden_states=text)  # warm-up
        return statistics.median(
            timed(lambda: unet(x, t, encoder_hidden_states=text), device) for _ in range(repeats)
        )


def fixed_costs(pipe, spec: dict, device: str, repeats: int) -> dict:
    """What both sides pay besides UNet calls: prompt encoding (the teacher also encodes the
    negative prompt) and the final VAE decode of every frame."""
    latents = random_latents(pipe, spec, 1, torch.float32)
    pipe.decode_latents(latents)  # warm-up
    text1 = statistics.median(
        timed(lambda: pipe.encode_prompt([PROMPT]), device) for _ in range(repeats)
    )
    decode = statistics.median(
        timed(lambda: pipe.decode_latents(latents), device) for _ in range(repeats)
    )
    return {"text_s": text1, "decode_s": decode}


def run_config(
    pipe, spec: dict, device: str, student_steps, repeats: int, teacher_steps: int = 50
) -> dict:
    """Teacher and students end to end and model-only, interleaved repeats, medians."""
    common = dict(num_frames=spec["frames"], height=spec["pixels"], width=spec["pixels"])
    runs = {"teacher": dict(num_inference_steps=teacher_steps, guidance_scale=9.0, sampler="ddim")}
    for n in student_steps:
        runs[f"student {n}"] = dict(num_inference_steps=n, sampler="consistency")

    def call(kwargs, output_type):
        return lambda: pipe(
            PROMPT,
            generator=torch.Generator().manual_seed(0),
            output_type=output_type,
            **common,
            **kwargs,
        )

    for kwargs in runs.values():  # warm-up (and compilation) of every shape
        call(kwargs, "np")()
    samples = {name: {"end_to_end": [], "model": []} for name in runs}
    peak = {}
    for _ in range(repeats):
        for name, kwargs in runs.items():
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            samples[name]["end_to_end"].append(timed(call(kwargs, "np"), device))
            samples[name]["model"].append(timed(call(kwargs, "latent"), device))
            if device.startswith("cuda"):
                peak[name] = torch.cuda.max_memory_allocated() / 2**30
    unet1 = unet_call_seconds(pipe, spec, 1, device, repeats * 3)
    unet2 = unet_call_seconds(pipe, spec, 2, device, repeats * 3)
    fixed = fixed_costs(pipe, spec, device, repeats)
    rows = {name: {k: statistics.median(v) for k, v in s.items()} for name, s in samples.items()}
    teacher = rows["teacher"]
    teacher_bound = teacher_steps * unet2 + 2 * fixed["text_s"] + fixed["decode_s"]
    for name, row in rows.items():
        row["peak_vram_gib"] = peak.get(name)
        row["speedup"] = teacher["end_to_end"] / row["end_to_end"]
        if name.startswith("student"):
            n = int(name.split()[1])
            row["limit"] = teacher_bound / (n * unet1 + fixed["text_s"] + fixed["decode_s"])
            row["share_of_limit"] = row["speedup"] / row["limit"]
    return {"unet_batch1_s": unet1, "unet_batch2_s": unet2, **fixed, "rows": rows}


def print_config(name: str, result: dict) -> None:
    print(
        f"\n## {name}: UNet call {result['unet_batch1_s'] * 1e3:.1f} ms (batch 1), "
        f"{result['unet_batch2_s'] * 1e3:.1f} ms (batch 2); prompt encoding "
        f"{result['text_s'] * 1e3:.1f} ms, final decode {result['decode_s'] * 1e3:.1f} ms"
    )
    print("| run | end to end s | model s | peak VRAM GiB | speedup | limit | of limit |")
    print("|---|---|---|---|---|---|---|")
    for run, row in result["rows"].items():
        vram = f"{row['peak_vram_gib']:.1f}" if row["peak_vram_gib"] is not None else "-"
        limit = f"{row['limit']:.1f}×" if "limit" in row else "-"
        share = f"{row['share_of_limit']:.0%}" if "limit" in row else "-"
        print(
            f"| {run} | {row['end_to_end']:.3f} | {row['model']:.3f} | {vram} | "
            f"{row['speedup']:.1f}× | {limit} | {share} |",
            flush=True,
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="real")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--teacher-steps", type=int, default=50, help="the teacher's DDIM steps")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    parser.add_argument("--json", help="also write the numbers here (after every row block)")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=420,
        help="skip the torch.compile rows when the run has used this much",
    )
    args = parser.parse_args(argv)

    start = time.perf_counter()
    dtype = torch.float16 if args.device.startswith("cuda") else torch.float32
    pipe = build_pipeline(args.size, args.device, dtype)
    spec = SIZES[args.size]
    params = sum(p.numel() for p in pipe.unet.parameters()) / 1e9
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device
    print(
        f"# {args.size} size on {device_name}, torch {torch.__version__}, {dtype}: UNet "
        f"{params:.2f} B parameters, {spec['frames']} frames at {spec['pixels']} px; built "
        f"in {time.perf_counter() - start:.0f} s",
        flush=True,
    )
    results = {"device": device_name, "torch": torch.__version__, "size": args.size}

    def record(name: str, result: dict) -> None:
        results[name] = result
        print_config(name, result)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)

    for name, path in attention_paths(pipe, args.device).items():
        try:
            with path():
                record(
                    name,
                    run_config(
                        pipe, spec, args.device, args.steps, args.repeats, args.teacher_steps
                    ),
                )
        except RuntimeError as err:  # a kernel that does not take these shapes
            print(f"\n## {name}: not available here ({str(err).splitlines()[0][:160]})")

    try:
        pipe.unet.enable_xformers_memory_efficient_attention()
        record(
            "xformers",
            run_config(pipe, spec, args.device, args.steps, args.repeats, args.teacher_steps),
        )
    except Exception as err:  # not installed, no GPU, or no kernel for this torch
        print(f"\n## xformers: not available here ({str(err).splitlines()[0][:160]})")
    finally:
        pipe.unet.set_default_attn_processor()

    if args.no_compile or time.perf_counter() - start > args.budget_s:
        print("\n## torch.compile: skipped (--no-compile or past --budget-s)")
        return
    compile_start = time.perf_counter()
    pipe.unet.compile()
    result = run_config(pipe, spec, args.device, args.steps, args.repeats, args.teacher_steps)
    result["compile_and_run_s"] = time.perf_counter() - compile_start
    record("sdpa (auto) + torch.compile", result)


if __name__ == "__main__":
    main()
