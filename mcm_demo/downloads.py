"""What `python -m mcm_demo fetch` downloads for a real teacher: its pipeline's (or SD1.5 base's)
component folders, its motion adapter, the previews' tiny autoencoder, the published MCM
adapters asked for and, with `--competitors`, the paper's competitors (competitors.py). The
catalogue names the repos; hub.py picks the files that load in each and downloads them."""

from __future__ import annotations

from . import competitors, hub
from .catalog import (
    PUBLISHED_ADAPTER_REPO,
    TEACHERS,
    TINY_SD_AUTOENCODER,
    CheckpointMissing,
    competitor_names,
)

# What our loaders read of a pipeline repo (TextToVideoPipeline.from_pretrained, or the SD1.5
# base's parts in `assemble_animatediff`); a ModelScope repo also holds its original
# checkpoints at the root, which nothing here loads.
PIPELINE_FOLDERS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


def repo_parts(teacher: str, variants=()) -> list[hub.RepoPart]:
    """The hub files a real teacher and some of its published adapters load from."""
    t = TEACHERS[teacher]
    if not t.repos:
        raise ValueError(f"{teacher!r} ships in weights/; nothing to fetch")
    parts = [hub.RepoPart(t.repo, PIPELINE_FOLDERS, ("model_index.json",), t.label)]
    if t.motion_adapter:
        parts.append(hub.RepoPart(t.motion_adapter, label=f"{t.label}'s motion adapter"))
    parts.append(hub.RepoPart(TINY_SD_AUTOENCODER, label="the previews' tiny autoencoder"))
    for v in variants:
        if v not in t.published:
            raise ValueError(
                f"{t.label} has no published {v!r} adapter; it has {', '.join(t.published)}"
            )
        # the PEFT folder only: its `unet_lora/` holds the same weights in kohya's layout
        folder = f"{t.prefix}-{v}"
        parts.append(hub.RepoPart(PUBLISHED_ADAPTER_REPO, (folder,), label=f"mcm-{v}"))
    return parts


def fetch(teacher: str, variants=(), dry_run=False, progress=None, log=print, rivals=False) -> list:
    """Download a real teacher and some of its published adapters (with `rivals`, the
    paper's competitors too) into the hub cache: only the files that load (hub.py), their
    total size said first. With `dry_run`, list them and their sizes and download nothing.
    Returns the planned `hub.HubFile`s."""
    if rivals and not competitor_names(teacher):
        raise ValueError(f"{TEACHERS[teacher].label} has no public competitors to fetch")
    parts = repo_parts(teacher, variants) + (competitors.repo_parts() if rivals else [])
    try:
        files = hub.plan(parts)
        for line in hub.describe(files, list_files=dry_run):
            log(line)
        if not dry_run:
            hub.download(files, progress=progress, log=log)
    except Exception as err:  # offline, hub down, no such repo
        raise CheckpointMissing(
            f"could not {'list' if dry_run else 'download'} {TEACHERS[teacher].label}'s files: "
            f"{type(err).__name__}: {str(err).rstrip('.')}. "
            "Check the network (or HF_HUB_OFFLINE) and run the command again."
        ) from None
    return files
