"""Writing clips and stills in the layouts `VideoSet` and `ImageSet` read: what `data
export-world` makes from the synthetic world (an example of every layout to copy), and what
the tests build their small sets with."""

from __future__ import annotations

import csv
import io
import json
import os
import tarfile

import cv2
import numpy as np

from ..video_io import write_mp4

VIDEO_LAYOUTS = ("webvid", "csv", "jsonl", "shards")
IMAGE_LAYOUTS = ("folder", "shards")


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def write_video_set(
    clips, captions, folder: str, layout: str, fps: float = 8.0, per_shard: int = 1000, crf=18
) -> str:
    """uint8 clips (F, H, W, 3) with captions → `folder` in `layout`; returns the path to pass
    as `--videos`. Keys are zero-padded indices, as video2dataset names its samples."""
    if layout not in VIDEO_LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose from {VIDEO_LAYOUTS}")
    os.makedirs(folder, exist_ok=True)
    keys = [f"{i:08d}" for i in range(len(captions))]
    if layout == "shards":
        tmp = os.path.join(folder, ".clip.mp4")
        for start in range(0, len(keys), per_shard):
            with tarfile.open(os.path.join(folder, f"{start // per_shard:05d}.tar"), "w") as tar:
                for i in range(start, min(start + per_shard, len(keys))):
                    with open(write_mp4(clips[i], tmp, fps=fps, crf=crf), "rb") as f:
                        _add_member(tar, f"{keys[i]}.mp4", f.read())
                    _add_member(tar, f"{keys[i]}.txt", (captions[i] or "").encode())
                    meta = {"key": keys[i], "caption": captions[i] or ""}
                    _add_member(tar, f"{keys[i]}.json", json.dumps(meta).encode())
        os.remove(tmp)
        count = (len(keys) + per_shard - 1) // per_shard
        return os.path.join(folder, f"{{00000..{count - 1:05d}}}.tar")
    page_dir = "clips"  # WebVid's page_dir: one subfolder per page of results
    for key, clip in zip(keys, clips):
        write_mp4(clip, os.path.join(folder, page_dir, f"{key}.mp4"), fps=fps, crf=crf)
    if layout == "jsonl":
        path = os.path.join(folder, "captions.jsonl")
        with open(path, "w") as f:
            for key, caption in zip(keys, captions):
                f.write(json.dumps({"path": f"{page_dir}/{key}.mp4", "caption": caption}) + "\n")
        return path
    path = os.path.join(folder, "results.csv" if layout == "webvid" else "captions.csv")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        if layout == "webvid":
            writer.writerow(["videoid", "contentUrl", "duration", "page_dir", "name"])
            for key, caption in zip(keys, captions):
                writer.writerow([key, "", "PT00H00M01S", page_dir, caption or ""])
        else:
            writer.writerow(["path", "caption"])
            for key, caption in zip(keys, captions):
                writer.writerow([f"{page_dir}/{key}.mp4", caption or ""])
    return path


def write_image_set(images, captions, folder: str, layout: str, per_shard: int = 1000) -> str:
    """uint8 stills (H, W, 3) with captions (None: no caption) → `folder` as PNG files with
    sidecar .txt, or img2dataset-style shards; returns the path to pass as `--images`."""
    if layout not in IMAGE_LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose from {IMAGE_LAYOUTS}")
    os.makedirs(folder, exist_ok=True)
    keys = [f"{i:08d}" for i in range(len(images))]
    if layout == "folder":
        for key, image, caption in zip(keys, images, captions):
            with open(os.path.join(folder, f"{key}.png"), "wb") as f:
                f.write(_png(image))
            if caption is not None:
                with open(os.path.join(folder, f"{key}.txt"), "w") as f:
                    f.write(caption)
        return folder
    for start in range(0, len(keys), per_shard):
        with tarfile.open(os.path.join(folder, f"{start // per_shard:05d}.tar"), "w") as tar:
            for i in range(start, min(start + per_shard, len(keys))):
                _add_member(tar, f"{keys[i]}.png", _png(images[i]))
                if captions[i] is not None:
                    _add_member(tar, f"{keys[i]}.txt", captions[i].encode())
    count = (len(keys) + per_shard - 1) // per_shard
    return os.path.join(folder, f"{{00000..{count - 1:05d}}}.tar")
