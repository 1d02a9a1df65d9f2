"""`python app.py`: the mcm-demo page at http://localhost:7860 on the embedded default."""

import argparse
import ctypes
import os
import sys
import tempfile

from mcm_demo.app.service import Service
from mcm_demo.app.ui import PAGE_CSS, build_demo, warm_examples
from mcm_demo.catalog import Catalog, CheckpointMissing
from mcm_demo.video_io import UploadLimits


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that contends for malloc an arena of its own (up to 8 a core),
    and Gradio runs handlers on a pool of threads: a server's RSS then climbs in ~50 MiB steps.
    Two arenas bound that (docs/reliability.md: the soak, with and without).
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # -8: M_ARENA_MAX
        except (OSError, AttributeError):  # not glibc (musl): nothing to limit
            pass


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--adapters",
        metavar="DIR",
        help="also offer your own students: each adapter folder in DIR (e.g. `distill --out "
        "runs/my-mcm/mcm-laion`), listed by its name in the model dropdowns",
    )
    return p.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    try:
        svc = Service(Catalog(adapters_dir=args.adapters))
    except CheckpointMissing as err:
        sys.exit(f"error: {err}")
    limit_malloc_arenas()
    # Cached examples go to a fresh folder: Gradio would otherwise reuse results made with older
    # weights.
    os.environ.setdefault("GRADIO_EXAMPLES_CACHE", tempfile.mkdtemp(prefix="mcm-demo-examples-"))
    demo = build_demo(svc, cache_examples=True)
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        # the server refuses bigger uploads before reading them
        max_file_size=UploadLimits.max_bytes,
        # an API client that sends a value a component refuses reads why, not a bare "error"
        show_error=True,
        css=PAGE_CSS,
        prevent_thread_lock=True,
    )
    warm_examples(demo)  # the examples' results, made while the page already serves
    demo.block_thread()
