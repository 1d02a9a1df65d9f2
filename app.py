"""`python app.py`: the mcm-demo page at http://localhost:7860 on the embedded default."""
import os

from mcm_demo.ui import build_demo

if __name__ == "__main__":
    build_demo().launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
