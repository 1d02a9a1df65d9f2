"""The page's motion-transfer tab: upload a clip, get the prompt's look with the clip's motion,
beside the same seed without transfer. Only UI code; the work is the service's."""

from __future__ import annotations

import os

from ..catalog import student_names
from . import service
from .handlers import model_label
from .handlers_transfer import TRANSFER_PROMPTS, reference_preview, transfer_for_page
from .notes import RunTimes, method_note
from .service import Service
from .ui_parts import export_updates, hide_downloads_on, on_gpu

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


def transfer_tab(gr, svc: Service) -> None:
    gr.Markdown(
        "Upload a short clip (mp4, webm, mov or gif): the new video takes the prompt's look "
        "and the clip's motion, sampled by a few-step student. Below: the reference, the "
        "transfer, and the same seed without transfer, each with its motion fidelity to the "
        "reference (1 = the same motion). The preview draws the motion read from the clip: the "
        "leading object's track (of two, the larger), or the camera's pan, zoom or roll as the "
        "subject's motion."
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
                    ("the prompt's object along the reference's motion", "layout"),
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
    hide_downloads_on(t_button, t_exports)
    t_button.click(
        on_gpu(transfer_handler),
        inputs,
        [out_ref, out_new, out_base, t_status, t_finished],
        api_name="transfer",
        concurrency_limit=1,
        concurrency_id="device",
        show_progress_on=[t_status],
    ).then(  # the note now quotes the time measured here
        on_method, [method, tune], method_help, queue=False, api_visibility="private"
    ).then(
        lambda job: export_updates(gr, job),
        t_finished,
        t_exports,
        api_visibility="private",
        show_progress_on=[t_export_status],
    )
