"""`python app.py`: the mcm-demo page at http://localhost:7860 on the embedded default."""

import os
import tempfile

from mcm_demo.app.ui import PAGE_CSS, build_demo
from mcm_demo.video_io import UploadLimits

if __name__ == "__main__":
    # The examples are run once at start-up (docs/export.md has the seconds it adds) into a
    # fresh folder: Gradio would otherwise reuse a cache made with older weights.
    os.environ.setdefault("GRADIO_EXAMPLES_CACHE", tempfile.mkdtemp(prefix="mcm-demo-examples-"))
    build_demo(cache_examples=True).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        # the server refuses bigger uploads before reading them
        max_file_size=UploadLimits.max_bytes,
        css=PAGE_CSS,
    )
