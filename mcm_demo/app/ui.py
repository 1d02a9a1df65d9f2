"""The Gradio page: LCM and MCM side by side, each column streaming its per-step preview, and
the motion-transfer tab. Only UI code lives here; the work is a `service.Service`'s (no gradio
below this package), reached through the handlers.
"""

from __future__ import annotations

import threading

from ..catalog import TEACHERS, VARIANTS, clip_defaults
from ..pipeline import LIMITS
from .handlers import (
    EXAMPLE_RUNS,
    EXAMPLES,
    MAX_QUEUE,
    compare,
    export_comparison,
    model_dropdown_choices,
    teacher_status,
    teacher_switch,
)
from .handlers_transfer import reference_preview, run_transfer, transfer_for_page
from .notes import SPEEDUP_NOTE, column_note
from .service import Service
from .ui_long import PAGE_MAX_FRAMES, long_video_section
from .ui_parts import export_updates, hide_downloads_on, on_gpu
from .ui_transfer import ASSETS, reference_examples, transfer_tab

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


# The clips are enlarged with nearest-neighbour in the file; the browser must not smear them
# again when it fits them to the column (pass to `launch(css=…)`: Gradio 6 takes CSS there).
PAGE_CSS = """
.pixelated video, .pixelated img { image-rendering: pixelated; }
"""


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
                transfer_tab(gr, svc)
        demo.queue(max_size=MAX_QUEUE)
    return demo


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
        default_frames, default_fps = clip_defaults("embedded")
        # the sliders follow the teacher's own clips (`on_teacher`): 8 embedded, 16 the others
        frames = gr.Slider(
            max(lo, 4), PAGE_MAX_FRAMES, value=default_frames, step=1, label="Frames"
        )
        fps = gr.Slider(2, 24, value=default_fps, step=1, label="Frames per second")
    with gr.Accordion("Advanced", open=False):
        with gr.Row():
            choices = model_dropdown_choices("embedded", svc.catalog)
            left_model = gr.Dropdown(choices, value="lcm", label="Left column")
            right_model = gr.Dropdown(choices, value="mcm-webvid", label="Right column")
            teacher_steps = gr.Slider(1, 100, value=25, step=1, label="Teacher steps (DDIM-N)")
            guidance = gr.Slider(1.0, 12.0, value=5.0, step=0.5, label="Teacher guidance (CFG)")
        availability = gr.Markdown(teacher_status(svc, "embedded"))
    travel, window_stride = long_video_section(gr)
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
        return *shown, *export_updates(gr, job)

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
        page = teacher_switch(svc, name, v)
        return (
            gr.update(choices=page.choices, value=page.left),
            gr.update(choices=page.choices, value=page.right),
            page.status,
            gr.update(value=page.frames),
            gr.update(value=page.fps),
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
        travel,
        window_stride,
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
            travel=travel,
            window_stride=window_stride,
        )

    variant.change(on_variant, [teacher, variant], right_model, queue=False)
    teacher.change(
        on_teacher, [teacher, variant], [left_model, right_model, availability, frames, fps]
    )
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
        travel,
        window_stride,
    ]
    hide_downloads_on(button, exports)
    button.click(
        on_gpu(on_compare),
        inputs,
        [seed, *columns, summary, finished],
        api_name="compare",
        concurrency_limit=1,
        concurrency_id="device",
        show_progress_on=[summary],
    ).then(  # after both columns are done, so the export never holds them up
        lambda job: export_updates(gr, job),
        finished,
        exports,
        api_visibility="private",
        show_progress_on=[export_status],
    )
    return examples
