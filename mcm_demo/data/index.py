"""Where a set's samples are: captions files (WebVid CSV, plain CSV, JSONL), WebDataset shards
(local tars or a brace pattern) and image folders, resolved before the first training step so
a wrong path or a CSV without the needed columns stops the run with a message, not a trace."""

from __future__ import annotations

import csv
import dataclasses
import glob
import json
import os
import re

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp")
VIDEO_EXTS = (".mp4", ".webm", ".mov", ".mkv", ".gif")
WEBVID_COLUMNS = ("videoid", "name", "page_dir")  # WebVid-10M/2M's results_*.csv
PLAIN_COLUMNS = ("path", "caption")


class DataSetError(ValueError):
    """A set that cannot be used at all, with what is wrong, raised before training starts."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One sample of a captions-file set: a stable key, the file, its caption (None: missing)."""

    key: str
    path: str
    caption: str | None


def sample_key(path: str) -> str:
    """A clip's key: its file name without the extension, as video2dataset names its members
    (so the same clip has the same key in a captions file and in a shard)."""
    return os.path.splitext(os.path.basename(path))[0]


def expand_braces(pattern: str) -> list[str]:
    """`shards/{00000..00099}.tar` → 100 names (zero padding kept); `{a,b}` lists too, as
    webdataset's brace patterns."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if match is None:
        return [pattern]
    head, tail, body = pattern[: match.start()], pattern[match.end() :], match.group(1)
    span = re.fullmatch(r"(\d+)\.\.(\d+)", body)
    if span:
        lo, hi = span.groups()
        width = len(lo) if lo.startswith("0") else 0
        items = [str(i).zfill(width) for i in range(int(lo), int(hi) + 1)]
    else:
        items = body.split(",")
    return [name for item in items for name in expand_braces(head + item + tail)]


def shard_paths(spec: str) -> list[str]:
    """The tar shards a spec names: one .tar, a folder of them, or a brace pattern (every
    shard it names must exist: a gap is a typo more often than a plan)."""
    if "{" in spec:
        paths = expand_braces(spec)
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise DataSetError(
                f"{len(missing)} of the {len(paths)} shards of {spec} do not exist "
                f"(the first: {missing[0]})"
            )
        return paths
    if os.path.isdir(spec):
        return sorted(glob.glob(os.path.join(spec, "*.tar")))
    return [spec]


def _csv_entries(path: str) -> list[Entry]:
    root = os.path.dirname(os.path.abspath(path))
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        reader.fieldnames = columns
        if all(c in columns for c in WEBVID_COLUMNS):
            return [
                Entry(
                    row["videoid"],
                    os.path.join(root, row["page_dir"] or "", f"{row['videoid']}.mp4"),
                    row["name"] or None,
                )
                for row in reader
                if row.get("videoid")
            ]
        if all(c in columns for c in PLAIN_COLUMNS):
            return [
                Entry(
                    sample_key(row["path"]),
                    os.path.join(root, row["path"]),
                    row["caption"] or None,
                )
                for row in reader
                if row.get("path")
            ]
    raise DataSetError(
        f"{path} has the columns {columns}; a video set's CSV needs WebVid's "
        f"{', '.join(WEBVID_COLUMNS)} or {', '.join(PLAIN_COLUMNS)}"
    )


def _jsonl_entries(path: str) -> tuple[list[Entry], int]:
    """Entries and the count of lines that are not an object with a path."""
    root, entries, bad = os.path.dirname(os.path.abspath(path)), [], 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rel = row.get("path") or row.get("video")
                caption = row.get("caption") or row.get("text")
            except (json.JSONDecodeError, AttributeError):
                bad += 1
                continue
            if not isinstance(rel, str):
                bad += 1
                continue
            caption = caption if isinstance(caption, str) and caption.strip() else None
            entries.append(Entry(sample_key(rel), os.path.join(root, rel), caption))
    return entries, bad


def captions_file_entries(path: str) -> tuple[list[Entry], int]:
    """A captions file's entries (WebVid CSV, plain CSV or JSONL) and its unreadable lines."""
    if path.lower().endswith(".csv"):
        return _csv_entries(path), 0
    if path.lower().endswith((".jsonl", ".json")):
        return _jsonl_entries(path)
    raise DataSetError(f"{path}: a captions file is a .csv or a .jsonl")


def captions_file_in(folder: str) -> str | None:
    """The one captions file of a folder of clips (None when there is none)."""
    found = sorted(p for ext in ("*.csv", "*.jsonl") for p in glob.glob(os.path.join(folder, ext)))
    if len(found) > 1:
        raise DataSetError(
            f"{folder} holds {len(found)} captions files "
            f"({', '.join(map(os.path.basename, found))}); name the one to use"
        )
    return found[0] if found else None


def image_folder_entries(folder: str) -> list[Entry]:
    """Every image under `folder` (recursively), with its sidecar .txt caption when present."""
    entries = []
    for dirpath, _, names in sorted(os.walk(folder)):
        for name in sorted(names):
            stem, ext = os.path.splitext(name)
            if ext.lower() not in IMAGE_EXTS:
                continue
            path, sidecar = os.path.join(dirpath, name), os.path.join(dirpath, stem + ".txt")
            caption = None
            if os.path.isfile(sidecar):
                with open(sidecar, encoding="utf-8", errors="replace") as f:
                    caption = f.read().strip() or None
            key = os.path.relpath(os.path.join(dirpath, stem), folder)
            entries.append(Entry(key, path, caption))
    return entries


def require_exists(spec: str, what: str) -> None:
    if "{" in spec:
        return  # a brace pattern: its shards are checked one by one
    if not os.path.exists(spec):
        raise DataSetError(f"the {what} {spec} does not exist")
