"""`python app.py`: the mcm-demo page at http://localhost:7860 on the embedded default."""

import os
import tempfile

from mcm_demo.app.ui import PAGE_CSS, build_demo, warm_examples
from mcm_demo.video_io import UploadLimits

if __name__ == "__main__":
    # Cached examples go to a fresh folder: Gradio would otherwise reuse results made with older
    # weights.
    os.environ.setdefault("GRADIO_EXAMPLES_CACHE", tempfile.mkdtemp(prefix="mcm-demo-examples-"))
    demo = build_demo(cache_examples=True)
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        # the server refuses bigger uploads before reading them
        max_file_size=UploadLimits.max_bytes,
        css=PAGE_CSS,
        prevent_thread_lock=True,
    )
    warm_examples(demo)  # the examples' results, made while the page already serves
    demo.block_thread()
