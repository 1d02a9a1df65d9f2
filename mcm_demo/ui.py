"""The Gradio page: a prompt becomes a clip, with the denoised estimate streamed per step.

Only UI code lives here; it calls the library (`catalog`, `pipeline`, `video_io`).
"""
from __future__ import annotations

import os
import queue
import tempfile
import threading
import time
import uuid

import numpy as np

from .catalog import CheckpointMissing, load_pipeline
from .pipeline import PipelineInputError
from .video_io import write_mp4

EXAMPLES = [
    "a red circle moving left on a black background",
    "a yellow star spinning on a gray background",
    "a blue square bouncing and a green triangle moving right on a white background",
    "a purple cross orbiting on a brown background",
]
OUTPUT_DIR = os.path.join(tempfile.gettempdir(), "mcm-demo-outputs")
_device_lock = threading.Lock()  # one generation at a time per device; the queue holds the rest


def filmstrip(frames: np.ndarray, scale: int = 3) -> np.ndarray:
    """(F, H, W, 3) floats → one uint8 image with the frames side by side, enlarged."""
    strip = np.concatenate(list(frames), axis=1)
    strip = strip.repeat(scale, 0).repeat(scale, 1)
    return (np.clip(strip, 0, 1) * 255).astype(np.uint8)


def _cleanup_old_outputs(max_age_s: float = 3600) -> None:
    now = time.time()
    for name in os.listdir(OUTPUT_DIR):
        path = os.path.join(OUTPUT_DIR, name)
        if now - os.path.getmtime(path) > max_age_s:
            try:
                os.remove(path)
            except OSError:
                pass


def generate(prompt: str, sampler: str, steps: float, guidance: float, seed: float, teacher: str = "embedded"):
    """Stream (preview, video, status) tuples: a preview per step, then the mp4."""
    import torch

    try:
        if seed is None or seed < 0:
            raise PipelineInputError(f"Seed must be 0 or more, got {seed}.")
        pipe = load_pipeline(teacher)
        steps = int(steps)
        pipe.check_inputs(prompt, steps, 8, guidance, sampler)
    except (PipelineInputError, CheckpointMissing) as err:
        yield None, None, f"⚠️ {err}"
        return
    updates: queue.Queue = queue.Queue()
    result: dict = {}

    def on_step(info):  # runs in the worker thread: decode the denoised estimate for the preview
        updates.put(("preview", info["i"], pipe.decode_latents(info["denoised"][:1])[0]))

    def work():
        try:
            with _device_lock:
                t0 = time.perf_counter()
                result["frames"] = pipe(prompt, num_inference_steps=steps, guidance_scale=guidance, sampler=sampler,
                                        generator=torch.Generator().manual_seed(int(seed)), callback=on_step)[0]
                result["seconds"] = time.perf_counter() - t0
        except Exception as err:  # reported to this user; the server keeps serving others
            result["error"] = err
        finally:
            updates.put(("done", None, None))

    threading.Thread(target=work, daemon=True).start()
    while True:
        kind, i, frames = updates.get()
        if kind == "done":
            break
        yield filmstrip(frames), None, f"step {i + 1}/{steps}: denoised estimate"
    if "error" in result:
        yield None, None, f"⚠️ generation failed: {result['error']}"
        return
    os.makedirs(OUTPUT_DIR, exist_ok=True)
    _cleanup_old_outputs()
    path = write_mp4(result["frames"], os.path.join(OUTPUT_DIR, f"{uuid.uuid4().hex}.mp4"), upscale=4)
    yield filmstrip(result["frames"]), path, f"done: {sampler} {steps} steps in {result['seconds']:.2f}s (measured)"


def build_demo():
    import gradio as gr

    with gr.Blocks(title="mcm-demo") as demo:
        gr.Markdown("# mcm-demo — text-to-video on the embedded teacher\n"
                    "The embedded default is a small ModelScope-style model trained on a synthetic world "
                    "(shapes, colours, motions); see the README.")
        with gr.Row():
            with gr.Column():
                prompt = gr.Textbox(label="Prompt", value=EXAMPLES[0], max_lines=3)
                sampler = gr.Radio(["ddim", "dpm++"], value="ddim", label="Sampler")
                steps = gr.Slider(1, 100, value=25, step=1, label="Steps")
                guidance = gr.Slider(1.0, 12.0, value=5.0, step=0.5, label="Guidance scale")
                seed = gr.Number(value=0, precision=0, label="Seed")
                button = gr.Button("Generate", variant="primary")
                gr.Examples(EXAMPLES, inputs=prompt)
            with gr.Column():
                preview = gr.Image(label="Denoised estimate, per step", type="numpy")
                video = gr.Video(label="Result", autoplay=True, loop=True, height=320)
                status = gr.Markdown()
        button.click(generate, [prompt, sampler, steps, guidance, seed], [preview, video, status],
                     concurrency_limit=1)
        demo.queue(max_size=32)
    return demo
