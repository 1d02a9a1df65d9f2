"""The Gradio page: LCM and MCM side by side, each column streaming its per-step preview.

Only UI code lives here; the work is a `service.Service`'s (no gradio below this module).
Every handler takes the service the page was built with.
"""

from __future__ import annotations

import os
import random

import numpy as np

from ..catalog import (
    DEFAULT_PROMPT,
    TEACHERS,
    VARIANTS,
    CheckpointMissing,
    fetch_command,
    student_names,
    variant_of,
)
from ..pipeline import LIMITS, PipelineInputError
from ..transfer import appearance_invariant_prompt
from ..video_io import UploadError, display_upscale, load_reference, to_uint8, write_mp4
from . import service
from .service import Service

EXAMPLES = [
    DEFAULT_PROMPT,
    "a yellow star spinning on a gray background",
    "a blue square bouncing and a green triangle moving right on a white background",
    "a purple cross orbiting on a brown background",
]
MAX_QUEUE = 32
ASSETS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "assets",
    "references",
)


def reference_examples() -> list[str]:
    """The example clips shipped in assets/references (none in an installed wheel)."""
    return (
        sorted(os.path.join(ASSETS, f) for f in os.listdir(ASSETS)) if os.path.isdir(ASSETS) else []
    )


def model_label(model: str, teacher_steps: int | None = None) -> str:
    if model == service.TEACHER_MODEL:
        return f"Teacher (DDIM-{teacher_steps}, CFG)" if teacher_steps else "Teacher (DDIM, CFG)"
    return "LCM" if model == "lcm" else f"MCM-{variant_of(model)}"


def model_dropdown_choices(teacher: str) -> list[tuple[str, str]]:
    return [(model_label(m), m) for m in service.model_choices(teacher)]


def filmstrip(frames: np.ndarray, scale: int = 3, max_width: int = 1536) -> np.ndarray:
    """(F, H, W, 3) floats → one uint8 image with the frames side by side, enlarged."""
    strip = np.concatenate(list(frames), axis=1)
    scale = max(1, min(scale, max_width // strip.shape[1]))
    strip = strip.repeat(scale, 0).repeat(scale, 1)
    return to_uint8(strip)


def teacher_status(svc: Service, teacher: str) -> str:
    """What the chosen teacher has on this machine, and the command for what it lacks."""
    t = TEACHERS[teacher]
    missing = svc.catalog.missing(teacher)
    absent_repos = [m for m in missing if m in t.repos]
    if absent_repos or "teacher" in missing:
        how = f"`{fetch_command(teacher)}`" if t.repos else "`python -m mcm_demo train teacher`"
        return (
            f"⚠️ {t.label}: {', '.join(absent_repos) or 'the teacher'} is not on this machine; "
            f"get it with {how} (needs internet once). The embedded teacher keeps working "
            "meanwhile."
        )
    if not missing:
        return f"{t.label}: teacher and all students available."
    how = (
        f"`{fetch_command(teacher, '<variant>')}`"
        if teacher != "embedded"
        else "`python -m mcm_demo distill …` (weights/README.md)"
    )
    return f"{t.label}: missing {', '.join(missing)}; get them with {how}."


def _column_request(
    prompt, model, steps, teacher_steps, seed, frames, guidance, teacher
) -> service.Request:
    return service.Request(
        prompt,
        model,
        teacher_steps if model == service.TEACHER_MODEL else steps,
        seed,
        frames,
        guidance,
        teacher,
    )


def run_column(svc: Service, req: service.Request, fps: float):
    """Yield (preview, video, status, seconds) for one column; problems become a ⚠️ status.
    `seconds` (the measured generation time) comes with the final video only."""
    label = model_label(req.model, req.steps if req.model == service.TEACHER_MODEL else None)
    try:
        for event in svc.stream(req):
            if isinstance(event, service.Preview):
                yield (
                    filmstrip(event.frames),
                    None,
                    f"**{label}** · step {event.step}/{event.total} (denoised estimate)",
                    None,
                )
            else:
                path = write_mp4(
                    event.frames,
                    service.new_output_path(),
                    fps=float(fps),
                    upscale=display_upscale(event.frames),
                )
                first = (
                    f"; first preview {event.first_preview_seconds:.2f} s after the start"
                    if event.first_preview_seconds is not None
                    else ""
                )
                yield (
                    filmstrip(event.frames),
                    path,
                    f"**{label}** · {req.steps} step{'s' * (req.steps > 1)} in "
                    f"**{event.seconds:.2f} s** "
                    f"(measured, without the {event.preview_seconds:.2f} s of preview "
                    f"decoding{first})",
                    event.seconds,
                )
                return
    except (PipelineInputError, CheckpointMissing, RuntimeError) as err:
        yield None, None, f"⚠️ {err}", None


def compare(
    svc: Service,
    prompt,
    teacher,
    variant,
    steps,
    seed,
    randomize,
    frames,
    fps,
    left,
    right,
    teacher_steps,
    guidance,
):
    """The page's one handler: stream the left column, then the right, then the speedups.

    Yields (seed, left preview, left video, left status, right preview, right video,
    right status, summary).
    """
    if randomize:
        seed = random.randrange(2**31)
    # Every yield carries the whole state (Gradio sends only what changed), so the last one is
    # the complete answer for API clients too.
    outputs = [seed, None, None, "", None, None, "", "Generating…"]
    yield tuple(outputs)
    if variant not in VARIANTS:
        message = f"⚠️ Unknown style variant {variant!r}; choose from {', '.join(VARIANTS)}."
        outputs[3] = outputs[6] = outputs[7] = message
        yield tuple(outputs)
        return
    timings = {}
    for side, model in ((0, left), (1, right)):
        req = _column_request(prompt, model, steps, teacher_steps, seed, frames, guidance, teacher)
        for preview, video, status, seconds in run_column(svc, req, fps):
            outputs[1 + 3 * side : 4 + 3 * side] = [preview, video, status]
            yield tuple(outputs)
            if seconds is not None:
                timings[
                    model_label(model, req.steps if model == service.TEACHER_MODEL else None)
                ] = seconds
    if not timings:
        outputs[7] = "Nothing was generated: see the messages above."
        yield tuple(outputs)
        return
    outputs[7] = (
        f"Measuring the teacher's {service.BASELINE_STEPS}-step DDIM + CFG once on this machine…"
    )
    yield tuple(outputs)
    try:
        base = svc.teacher_baseline_seconds(teacher, int(frames), float(guidance))
    except (PipelineInputError, CheckpointMissing, RuntimeError) as err:
        outputs[7] = f"⚠️ no speedup: {err}"
    else:
        ratios = ", ".join(f"{name} **{base / s:.1f}×**" for name, s in timings.items())
        outputs[7] = (
            f"Speedup over the teacher's {service.BASELINE_STEPS}-step DDIM + CFG "
            f"({base:.2f} s, measured on this machine): {ratios}"
        )
    yield tuple(outputs)


TRANSFER_PROMPTS = [
    "a yellow star on a gray background",
    "a green triangle on a white background",
    "a purple cross on a brown background",
]


def reference_preview(svc: Service, path, teacher: str = "embedded"):
    """The uploaded clip as the model will see it (frames and centre crop), or a message."""
    if not path:
        return None, ""
    size = svc.clip_size(teacher)
    try:
        clip = load_reference(path, num_frames=service.TRANSFER_FRAMES, size=size)
    except UploadError as err:
        return None, f"⚠️ {err}"
    return (
        write_mp4(clip, service.new_output_path(), fps=8, upscale=display_upscale(clip)),
        f"Reference read: {service.TRANSFER_FRAMES} frames, {size}×{size} centre crop.",
    )


def run_transfer(
    svc: Service,
    reference,
    prompt,
    method,
    student,
    steps,
    strength,
    inner_iterations,
    tune_steps,
    motion_prompt,
    seed,
    start_look=service.TransferRequest.start_look,
    progress=None,
):
    """Returns (reference mp4, transferred mp4, baseline mp4, status)."""

    def report(i, n, loss):
        if progress is not None:
            progress(i / n, desc=f"VMC tuning {i}/{n} (motion loss {loss:.3f})")

    req = service.TransferRequest(
        reference,
        prompt,
        method,
        student,
        steps,
        strength,
        inner_iterations,
        tune_steps,
        motion_prompt or "",
        seed,
        start_look=start_look,
    )
    try:
        out = svc.run_transfer(req, progress=report)
    except (PipelineInputError, CheckpointMissing, UploadError, ValueError, RuntimeError) as err:
        return None, None, None, f"⚠️ {err}"
    paths = [
        write_mp4(out[k], service.new_output_path(), fps=8, upscale=display_upscale(out[k]))
        for k in ("reference", "transferred", "baseline")
    ]
    mf = {k: out[f"{k}_fidelity"] for k in ("transferred", "baseline")}
    tuned = (
        f" (motion prompt: '{out['info']['invariant_prompt']}')"
        if "invariant_prompt" in out["info"]
        else ""
    )
    status = (
        f"**{method}**{tuned}: {out['transferred_seconds']:.2f} s, motion fidelity to the "
        "reference "
        f"**{mf['transferred']:.2f}** · same seed without transfer: "
        f"{out['baseline_seconds']:.2f} s, "
        f"motion fidelity {mf['baseline']:.2f} (measured)"
    )
    if method == "vmc" and not motion_prompt:
        status += f". Derived motion prompt: '{appearance_invariant_prompt(prompt)}'."
    return *paths, status


def _gpu(fn):
    """On Hugging Face ZeroGPU Spaces, ask for a GPU per call; elsewhere a no-op."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=120)(fn)


def build_demo(svc: Service | None = None):
    """The page around `svc` (a new one on the default weights if None)."""
    import gradio as gr

    svc = svc or Service()
    with gr.Blocks(title="mcm-demo: Motion Consistency Models", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(
            "# mcm-demo — LCM vs MCM, few-step text-to-video\n"
            "Two few-step students of the same teacher side by side: the LCM baseline and a "
            "Motion Consistency Model whose frame quality comes from a style's image set. "
            "Every step's denoised estimate streams in, then the mp4 plays."
        )
        with gr.Tabs():
            with gr.Tab("Compare"):
                _compare_tab(gr, svc)
            with gr.Tab("Motion transfer"):
                _transfer_tab(gr, svc)
        demo.queue(max_size=MAX_QUEUE)
    return demo


def _compare_tab(gr, svc: Service) -> None:
    with gr.Row():
        with gr.Column(scale=2):
            prompt = gr.Textbox(label="Prompt", value=EXAMPLES[0], max_lines=3)
            gr.Examples(EXAMPLES, inputs=prompt)
        with gr.Column(scale=1):
            teachers = [(t.label, name) for name, t in TEACHERS.items()]
            teacher = gr.Dropdown(teachers, value="embedded", label="Teacher")
            variant = gr.Radio(list(VARIANTS), value="webvid", label="Style variant (MCM)")
            steps = gr.Radio([1, 2, 4, 8], value=4, label="Steps")
    with gr.Row():
        seed = gr.Number(value=0, precision=0, label="Seed", minimum=0)
        randomize = gr.Checkbox(value=False, label="Randomize seed")
        lo, hi = LIMITS.frames
        frames = gr.Slider(max(lo, 4), min(hi, 16), value=8, step=1, label="Frames")
        fps = gr.Slider(2, 24, value=8, step=1, label="Frames per second")
    with gr.Accordion("Advanced", open=False):
        with gr.Row():
            choices = model_dropdown_choices("embedded")
            left_model = gr.Dropdown(choices, value="lcm", label="Left column")
            right_model = gr.Dropdown(choices, value="mcm-webvid", label="Right column")
            teacher_steps = gr.Slider(1, 100, value=25, step=1, label="Teacher steps (DDIM-N)")
            guidance = gr.Slider(1.0, 12.0, value=5.0, step=0.5, label="Teacher guidance (CFG)")
        availability = gr.Markdown(teacher_status(svc, "embedded"))
    button = gr.Button("Generate", variant="primary")
    with gr.Row(equal_height=True):
        columns = []
        for side in ("left", "right"):
            with gr.Column():
                status = gr.Markdown(elem_id=f"{side}-status")
                preview = gr.Image(
                    label="Denoised estimate, per step", type="numpy", elem_id=f"{side}-preview"
                )
                video = gr.Video(
                    label="Result", autoplay=True, loop=True, height=280, elem_id=f"{side}-video"
                )
                columns += [preview, video, status]
    summary = gr.Markdown(elem_id="summary")

    def on_variant(name, v):  # the right column follows the style, where the teacher has it
        return gr.update(value=f"mcm-{v}") if f"mcm-{v}" in student_names(name) else gr.update()

    def on_teacher(name, v):
        choices, students = model_dropdown_choices(name), student_names(name)
        left = "lcm" if "lcm" in students else service.TEACHER_MODEL
        fallback = students[0] if students else service.TEACHER_MODEL
        right = f"mcm-{v}" if f"mcm-{v}" in students else fallback
        return (
            gr.update(choices=choices, value=left),
            gr.update(choices=choices, value=right),
            teacher_status(svc, name),
        )

    def on_compare(
        prompt,
        teacher,
        variant,
        steps,
        seed,
        randomize,
        frames,
        fps,
        left,
        right,
        teacher_steps,
        guidance,
    ):
        yield from compare(
            svc,
            prompt,
            teacher,
            variant,
            steps,
            seed,
            randomize,
            frames,
            fps,
            left,
            right,
            teacher_steps,
            guidance,
        )

    variant.change(on_variant, [teacher, variant], right_model, queue=False)
    teacher.change(on_teacher, [teacher, variant], [left_model, right_model, availability])
    inputs = [
        prompt,
        teacher,
        variant,
        steps,
        seed,
        randomize,
        frames,
        fps,
        left_model,
        right_model,
        teacher_steps,
        guidance,
    ]
    button.click(
        _gpu(on_compare),
        inputs,
        [seed, *columns, summary],
        api_name="compare",
        concurrency_limit=1,
        concurrency_id="device",
    )


def _transfer_tab(gr, svc: Service) -> None:
    gr.Markdown(
        "Upload a short clip (mp4, webm, mov or gif): the new video takes the prompt's look "
        "and the clip's motion, sampled by a few-step student. **fastvmt** guides the first "
        "step with the clip's attention motion flow (training-free); **vmc** first tunes a "
        "small temporal-attention LoRA on the clip (cached per clip)."
    )
    defaults = service.TransferRequest  # the library's defaults, as the CLI's
    with gr.Row():
        with gr.Column():
            upload = gr.File(
                label="Reference clip",
                file_types=[".mp4", ".webm", ".mov", ".gif"],
                type="filepath",
            )
            ref_preview = gr.Video(
                label="What the model sees", height=200, autoplay=True, loop=True
            )
            ref_status = gr.Markdown()
            gr.Examples(reference_examples(), inputs=upload)
        with gr.Column():
            t_prompt = gr.Textbox(label="Prompt (the look)", value=TRANSFER_PROMPTS[0], max_lines=2)
            method = gr.Radio(["fastvmt", "vmc"], value="fastvmt", label="Method")
            t_student = gr.Dropdown(
                [(model_label(m), m) for m in student_names("embedded")],
                value="mcm-webvid",
                label="Student",
            )
            t_steps = gr.Radio([2, 4, 8], value=defaults.steps, label="Steps")
            strength = gr.Slider(
                0.3,
                1.0,
                value=defaults.strength,
                step=0.05,
                label="Strength (1 = pure noise start)",
            )
            with gr.Accordion("Method knobs", open=False):
                inner = gr.Slider(
                    1,
                    48,
                    value=defaults.inner_iterations,
                    step=1,
                    label="Inner iterations (fastvmt)",
                )
                tune = gr.Slider(
                    5, 400, value=defaults.tune_steps, step=5, label="Tuning steps (vmc)"
                )
                motion_prompt = gr.Textbox(label="Motion prompt for tuning (vmc; empty = derived)")
                t_seed = gr.Number(value=0, precision=0, label="Seed", minimum=0)
                looks = [
                    ("the reference, recoloured to the prompt's look", "prompt"),
                    ("the reference as it is", "reference"),
                ]
                start_look = gr.Radio(looks, value=defaults.start_look, label="Start from")
            t_button = gr.Button("Transfer motion", variant="primary")
    t_status = gr.Markdown(elem_id="transfer-status")
    with gr.Row():
        out_ref = gr.Video(label="Reference", autoplay=True, loop=True, height=240)
        out_new = gr.Video(
            label="Transferred", autoplay=True, loop=True, height=240, elem_id="transferred"
        )
        out_base = gr.Video(label="Same seed, no transfer", autoplay=True, loop=True, height=240)
    upload.change(lambda path: reference_preview(svc, path), upload, [ref_preview, ref_status])

    def transfer_handler(
        reference,
        prompt_text,
        method_name,
        student,
        steps_n,
        strength_v,
        inner_n,
        tune_n,
        motion_text,
        seed_v,
        look,
        progress=gr.Progress(),
    ):
        return run_transfer(
            svc,
            reference,
            prompt_text,
            method_name,
            student,
            steps_n,
            strength_v,
            inner_n,
            tune_n,
            motion_text,
            seed_v,
            look,
            progress,
        )

    inputs = [
        upload,
        t_prompt,
        method,
        t_student,
        t_steps,
        strength,
        inner,
        tune,
        motion_prompt,
        t_seed,
        start_look,
    ]
    t_button.click(
        _gpu(transfer_handler),
        inputs,
        [out_ref, out_new, out_base, t_status],
        api_name="transfer",
        concurrency_limit=1,
        concurrency_id="device",
    )
