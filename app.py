"""`python app.py`: the mcm-demo page at http://localhost:7860 on the embedded default."""

import os

from mcm_demo.app.ui import build_demo
from mcm_demo.video_io import UploadLimits

if __name__ == "__main__":
    build_demo().launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        # the server refuses bigger uploads before reading them
        max_file_size=UploadLimits.max_bytes,
        # an API client that sends a value a component refuses reads why, not a bare "error"
        show_error=True,
    )
