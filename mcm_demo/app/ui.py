"""The Gradio page: LCM and MCM side by side, each column streaming its per-step preview, and
the motion-transfer tab. Only UI code lives here; the work is a `service.Service`'s (no gradio
below this package), reached through the handlers.
"""

from __future__ import annotations

import os
import threading

from ..catalog import TEACHERS, VARIANTS, student_names
from ..pipeline import LIMITS
from . import service
from .handlers import (
    EXAMPLE_RUNS,
    EXAMPLES,
    MAX_QUEUE,
    TRANSFER_PROMPTS,
    compare,
    export_comparison,
    model_dropdown_choices,
    model_label,
    reference_preview,
    run_transfer,
    teacher_status,
    transfer_for_page,
)
from .notes import SPEEDUP_NOTE, RunTimes, column_note, method_note
from .service import Service

__all__ = [
    "ASSETS",
    "PAGE_CSS",
    "build_demo",
    "warm_examples",
    "compare",
    "reference_examples",
    "reference_preview",
    "run_transfer",
    "export_comparison",
    "transfer_for_page",
    "teacher_status",
]

ASSETS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "assets",
    "references",
)


# The clips are enlarged with nearest-neighbour in the file; the browser must not smear them
# again when it fits them to the column (pass to `launch(css=…)`: Gradio 6 takes CSS there).
PAGE_CSS = """
.pixelated video, .pixelated img { image-rendering: pixelated; }
"""


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


def build_demo(svc: Service | None = None, cache_examples: bool = False):
    """The page around `svc` (a new one on the default weights if None). With `cache_examples`
    an example's result is kept once made, for every later click; `warm_examples` makes them
    right after launch (app.py does; tests do not). Launch it with `css=PAGE_CSS`."""
    import gradio as gr

    svc = svc or Service()
    with gr.Blocks(title="mcm-demo: Motion Consistency Models", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(
            "# mcm-demo — LCM vs MCM, few-step text-to-video\n"
            "Two few-step students of the same teacher side by side: the LCM baseline and a "
            "Motion Consistency Model whose frame quality comes from a style's image set. "
            "Every step's denoised estimate streams in, then the mp4 plays, and the two "
            "come as one labelled side-by-side video to download."
        )
        with gr.Tabs():
            with gr.Tab("Compare"):
                # the examples, for `warm_examples`
                demo.mcm_examples = _compare_tab(gr, svc, cache_examples)
            with gr.Tab("Motion transfer"):
                _transfer_tab(gr, svc)
        demo.queue(max_size=MAX_QUEUE)
    return demo


def _export_updates(gr, job):
    """Build the side-by-side export and show its two download buttons (hidden without one)."""
    mp4, gif, note = export_comparison(job)
    return (
        gr.update(value=mp4, visible=mp4 is not None),
        gr.update(value=gif, visible=gif is not None),
        note,
    )


def warm_examples(demo) -> threading.Thread:
    """Make the cached examples' results in the background, one after another, once `demo` is
    launched: the page serves at once, and a click on an example made by then shows it at once.
    (Gradio's eager caching would hold up the launch for all of them: docs/export.md.)"""
    examples = demo.mcm_examples

    def work():
        for i in range(len(examples.examples)):
            examples.load_from_cache(i)  # what a click does: make it unless already made

    thread = threading.Thread(target=work, name="warm-examples", daemon=True)
    thread.start()
    return thread


def _compare_tab(gr, svc: Service, cache_examples: bool = False):
    with gr.Row():
        with gr.Column(scale=2):
            prompt = gr.Textbox(label="Prompt", value=EXAMPLES[0], max_lines=3)
            examples_slot = gr.Column()  # filled below, once the outputs exist
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
            choices = model_dropdown_choices("embedded", svc.catalog)
            left_model = gr.Dropdown(choices, value="lcm", label="Left column")
            right_model = gr.Dropdown(choices, value="mcm-webvid", label="Right column")
            teacher_steps = gr.Slider(1, 100, value=25, step=1, label="Teacher steps (DDIM-N)")
            guidance = gr.Slider(1.0, 12.0, value=5.0, step=0.5, label="Teacher guidance (CFG)")
        availability = gr.Markdown(teacher_status(svc, "embedded"))
    button = gr.Button("Generate", variant="primary")
    with gr.Row(equal_height=True):
        columns, notes = [], []
        for side, model in (("left", "lcm"), ("right", "mcm-webvid")):
            with gr.Column():
                status = gr.Markdown(elem_id=f"{side}-status")
                preview = gr.Image(
                    label="Denoised estimate, per step",
                    type="numpy",
                    elem_id=f"{side}-preview",
                    elem_classes=["pixelated"],
                )
                video = gr.Video(
                    label="Result",
                    autoplay=True,
                    loop=True,
                    height=320,
                    elem_id=f"{side}-video",
                    elem_classes=["pixelated"],
                )
                notes.append(gr.Markdown(column_note(model), elem_id=f"{side}-note"))
                columns += [preview, video, status]
    summary = gr.Markdown(elem_id="summary")
    gr.Markdown(SPEEDUP_NOTE)
    with gr.Row():
        export_status = gr.Markdown(elem_id="export-status")
        download_mp4 = gr.DownloadButton(
            "Download side by side (mp4)", visible=False, elem_id="download-mp4"
        )
        download_gif = gr.DownloadButton(
            "Download side by side (GIF)", visible=False, elem_id="download-gif"
        )
    finished = gr.State(None)  # the finished columns, for the export that follows them
    exports = [download_mp4, download_gif, export_status]

    def on_example(prompt, variant, steps, seed):  # what a cached example shows
        runs = compare(
            svc,
            prompt,
            "embedded",
            variant,
            steps,
            seed,
            randomize=False,
            frames=8,
            fps=8,
            left="lcm",
            right=f"mcm-{variant}",
            teacher_steps=25,
            guidance=5.0,
            speedup=False,  # the teacher's 50 steps would add seconds to start-up
        )
        *shown, job = list(runs)[-1]
        return *shown, *_export_updates(gr, job)

    with examples_slot:
        examples = gr.Examples(
            EXAMPLE_RUNS,
            inputs=[prompt, variant, steps, seed],
            outputs=[seed, *columns, summary, *exports],
            fn=on_example,
            cache_examples=cache_examples,
            cache_mode="lazy",  # made by `warm_examples` after launch, not during it
            label="Examples (the embedded teacher draws shape, colour, motion and background)",
        )

    def on_variant(name, v):  # the right column follows the style, where the teacher has it
        students = svc.catalog.students(name)
        return gr.update(value=f"mcm-{v}") if f"mcm-{v}" in students else gr.update()

    def on_teacher(name, v):
        choices, students = model_dropdown_choices(name, svc.catalog), svc.catalog.students(name)
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
        progress=gr.Progress(),
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
            progress,
        )

    variant.change(on_variant, [teacher, variant], right_model, queue=False)
    teacher.change(on_teacher, [teacher, variant], [left_model, right_model, availability])
    for dropdown, note in zip((left_model, right_model), notes):
        for trigger in (dropdown.change, teacher_steps.change):
            trigger(column_note, [dropdown, teacher_steps], note, queue=False)
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
    _hide_downloads_on(button, exports)
    button.click(
        _gpu(on_compare),
        inputs,
        [seed, *columns, summary, finished],
        api_name="compare",
        concurrency_limit=1,
        concurrency_id="device",
        show_progress_on=[summary],
    ).then(  # after both columns are done, so the export never holds them up
        lambda job: _export_updates(gr, job),
        finished,
        exports,
        api_visibility="private",
        show_progress_on=[export_status],
    )
    return examples


def _transfer_tab(gr, svc: Service) -> None:
    gr.Markdown(
        "Upload a short clip (mp4, webm, mov or gif): the new video takes the prompt's look "
        "and the clip's motion, sampled by a few-step student. Below: the reference, the "
        "transfer, and the same seed without transfer, each with its motion fidelity to the "
        "reference (1 = the same motion)."
    )
    times = RunTimes()  # this server's measured transfer times, for the method note
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
            method_help = gr.Markdown(
                method_note("fastvmt", defaults.tune_steps), elem_id="method-note"
            )
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
        video = dict(autoplay=True, loop=True, height=256, elem_classes=["pixelated"])
        out_ref = gr.Video(label="Reference", **video)
        out_new = gr.Video(label="Transferred", elem_id="transferred", **video)
        out_base = gr.Video(label="Same seed, no transfer", **video)
    with gr.Row():
        t_export_status = gr.Markdown(elem_id="transfer-export-status")
        t_mp4 = gr.DownloadButton("Download side by side (mp4)", visible=False)
        t_gif = gr.DownloadButton("Download side by side (GIF)", visible=False)
    t_finished = gr.State(None)
    t_exports = [t_mp4, t_gif, t_export_status]
    upload.change(lambda path: reference_preview(svc, path), upload, [ref_preview, ref_status])

    def on_method(m, n):
        return method_note(m, n, times)

    for trigger in (method.change, tune.change):
        trigger(on_method, [method, tune], method_help, queue=False)

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
        return transfer_for_page(
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
            times,
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
    _hide_downloads_on(t_button, t_exports)
    t_button.click(
        _gpu(transfer_handler),
        inputs,
        [out_ref, out_new, out_base, t_status, t_finished],
        api_name="transfer",
        concurrency_limit=1,
        concurrency_id="device",
        show_progress_on=[t_status],
    ).then(  # the note now quotes the time measured here
        on_method, [method, tune], method_help, queue=False, api_visibility="private"
    ).then(
        lambda job: _export_updates(gr, job),
        t_finished,
        t_exports,
        api_visibility="private",
        show_progress_on=[t_export_status],
    )


def _hide_downloads_on(button, exports) -> None:
    """A new run hides the last run's downloads (two buttons and a status line) until its own
    export is ready."""
    import gradio as gr

    button.click(
        lambda: (gr.update(visible=False), gr.update(visible=False), ""),
        None,
        exports,
        queue=False,
        api_visibility="private",
    )
