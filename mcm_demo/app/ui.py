"""The Gradio page: LCM and MCM side by side, each column streaming its per-step preview, and
the motion-transfer tab. Only UI code lives here; the work is a `service.Service`'s (no gradio
below this package), reached through the handlers.
"""

from __future__ import annotations

import os

from ..catalog import TEACHERS, VARIANTS, student_names
from ..pipeline import LIMITS
from . import service
from .handlers import (
    EXAMPLES,
    MAX_QUEUE,
    TRANSFER_PROMPTS,
    compare,
    model_dropdown_choices,
    model_label,
    reference_preview,
    run_transfer,
    teacher_status,
)
from .service import Service

__all__ = [
    "ASSETS",
    "build_demo",
    "compare",
    "reference_examples",
    "reference_preview",
    "run_transfer",
    "teacher_status",
]

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

    # named like `compare`'s parameters: API clients call /compare with these keywords
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
