"""Pieces both tabs of the page use: the GPU request on ZeroGPU Spaces, and the side-by-side
export's download buttons."""

from __future__ import annotations

from .handlers import export_comparison


def on_gpu(fn):
    """On Hugging Face ZeroGPU Spaces, ask for a GPU per call; elsewhere a no-op."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=120)(fn)


def export_updates(gr, job):
    """Build the side-by-side export and show its two download buttons (hidden without one)."""
    mp4, gif, note = export_comparison(job)
    return (
        gr.update(value=mp4, visible=mp4 is not None),
        gr.update(value=gif, visible=gif is not None),
        note,
    )


def hide_downloads_on(button, exports) -> None:
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
