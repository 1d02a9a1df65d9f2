"""The application: the request/stream service, the Gradio page and the command line."""
