"""The motion-transfer tab's handlers: the upload's preview with what was read, and a transfer
with its side by side. Plain functions of a `Service`, as in `handlers`."""

from __future__ import annotations

from ..catalog import CheckpointMissing
from ..pipeline import PipelineInputError
from ..transfer import appearance_invariant_prompt
from ..transfer.overlay import draw_reading
from ..transfer.reading import read_motion
from ..video_io import UploadError, display_upscale, write_mp4
from . import service
from .exports import transfer_side_by_side
from .handlers import model_label
from .notes import RunTimes
from .service import Service

TRANSFER_PROMPTS = [
    "a yellow star on a gray background",
    "a green triangle on a white background",
    "a purple cross on a brown background",
]


def reference_preview(svc: Service, path, teacher: str = "embedded"):
    """The uploaded clip as the model will see it (frames and centre crop), or a message."""
    if not path:
        return None, ""
    try:  # decoded once: the transfer reuses this clip (the service keys it by content)
        clip = svc.reference_clip(path, teacher)
    except UploadError as err:
        return None, f"⚠️ {err}"
    size, reading = clip.shape[1], read_motion(clip)  # what will be transferred, drawn on
    read = f"Reference read: {service.TRANSFER_FRAMES} frames, {size}×{size} centre crop. "
    if reading.usable:
        read += f"Motion read: {reading.describe()}."
    else:
        read = f"⚠️ {read}{reading.describe()} Upload a clip where something moves, or the camera."
    shown = draw_reading(clip, reading, display_upscale(clip))
    return write_mp4(shown, service.new_output_path(), fps=8), read


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
    return transfer_for_page(
        svc,
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
        start_look,
        progress,
    )[:4]


def transfer_for_page(
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
    times: RunTimes | None = None,
):
    """`run_transfer`'s outputs and a `SideBySide` of them for `export_comparison` (None when
    nothing was made); `times` records how long it took, for the method notes."""

    def report(i, n, loss):
        if progress is not None:
            progress(i / n, desc=f"VMC tuning {i}/{n} (motion loss {loss:.3f})")

    if progress is not None:  # fastvmt's guidance and the sampling report no steps of their own
        progress(None, desc=f"{method}: transferring, then the same seed without transfer…")
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
        return None, None, None, f"⚠️ {err}", None
    if times is not None:
        times.record_transfer(method, out["info"], out["transferred_seconds"], int(tune_steps))
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
    if "motion" in out["info"]:
        status += f". Motion read: {out['info']['motion']}"
    if method == "vmc" and not motion_prompt:
        status += f". Derived motion prompt: '{appearance_invariant_prompt(prompt)}'."
    job = transfer_side_by_side(out, prompt, method, model_label(student), int(steps), int(seed))
    return *paths, status, job
