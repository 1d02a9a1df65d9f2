"""mcm-demo: few-step text-to-video with Motion Consistency Models.

The public API (what the README's library example and the tests use; a module may move, these
names stay):

    from mcm_demo import DEFAULT_PROMPT, Catalog, Request, Service
    service = Service(Catalog())  # weights/ by default, or Catalog("my/weights")
    result = service.generate(Request(DEFAULT_PROMPT, "mcm-webvid", steps=4))

`TextToVideoPipeline` is the pipeline itself (`Catalog().load_pipeline()` gives the cached one).
"""

from importlib import import_module

_API = {
    "TextToVideoPipeline": "mcm_demo.pipeline",
    "PipelineInputError": "mcm_demo.pipeline",
    "LIMITS": "mcm_demo.pipeline",
    "Catalog": "mcm_demo.catalog",
    "CheckpointMissing": "mcm_demo.catalog",
    "DEFAULT_PROMPT": "mcm_demo.catalog",
    "TEACHERS": "mcm_demo.catalog",
    "VARIANTS": "mcm_demo.catalog",
    "Service": "mcm_demo.app.service",
    "Request": "mcm_demo.app.service",
    "TransferRequest": "mcm_demo.app.service",
    "Preview": "mcm_demo.app.service",
    "Result": "mcm_demo.app.service",
    "check_request": "mcm_demo.app.service",
    "TransferConfig": "mcm_demo.transfer",
    "transfer": "mcm_demo.transfer",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    # imported on first use, so `import mcm_demo.embedded.world` stays light
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'mcm_demo' has no attribute {name!r}")
