"""WebDataset tar shards as video2dataset and img2dataset write them: the members of one
sample share a key (`00000042.mp4`, `00000042.txt`, `00000042.json`) and sit side by side.

A shard is opened for random access (the headers are read, the data skipped), so a clip is
decoded straight from the tar without reading it whole; a member that is not a regular file
is ignored (tarfile never extracts anything to disk here).
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterator

CAPTION_KEYS = ("caption", "txt", "text")


def split_name(name: str) -> tuple[str, str]:
    """`dir/00000042.mp4` → (`dir/00000042`, `mp4`): the key is the name up to the first dot
    of its last part, as webdataset splits it."""
    folder, base = os.path.split(name)
    stem, _, ext = base.partition(".")
    return os.path.join(folder, stem) if folder else stem, ext.lower()


def shard_samples(path: str) -> Iterator[tuple[str, tarfile.TarFile, dict]]:
    """(key, the open tar, {extension: member}) for each sample of one shard, in order."""
    with tarfile.open(path, mode="r:*") as tar:
        groups: dict[str, dict[str, tarfile.TarInfo]] = {}
        order: list[str] = []
        for member in tar:
            if not member.isfile():
                continue
            key, ext = split_name(member.name)
            if key not in groups:
                groups[key] = {}
                order.append(key)
            groups[key][ext] = member
        for key in order:
            yield key, tar, groups[key]


def member_caption(tar: tarfile.TarFile, members: dict) -> str | None:
    """The sample's caption: its .txt, else the `caption` field of its .json."""
    if "txt" in members:
        text = tar.extractfile(members["txt"]).read(1 << 20).decode("utf-8", "replace").strip()
        if text:
            return text
    if "json" in members:
        try:
            meta = json.loads(tar.extractfile(members["json"]).read(1 << 20))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        for key in CAPTION_KEYS:
            value = meta.get(key) if isinstance(meta, dict) else None
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None
