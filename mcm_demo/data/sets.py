"""Video and image sets as torch datasets, one rank's share each, read in DataLoader workers.

Every rank owns a fixed, disjoint part of a set (a seeded split of its samples, or of its
shards when there are enough of them), so N processes read N different parts and never the
same sample twice in an epoch; each epoch reshuffles a rank's own part. A sample that cannot
be used comes back as a skip record instead of a clip, and `SampleStream` counts it and draws
on, so one broken file costs one sample, not the run.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import os
import random
import tarfile
import zlib
from collections.abc import Iterator

import numpy as np
import torch

from .decode import ClipSpec, SampleSkipped, decode_clip, decode_image
from .index import (
    IMAGE_EXTS,
    VIDEO_EXTS,
    DataSetError,
    Entry,
    captions_file_entries,
    captions_file_in,
    image_folder_entries,
    require_exists,
    shard_paths,
)
from .webdataset import member_caption, shard_samples


@dataclasses.dataclass
class SkipCounts:
    """Skipped samples by reason, with the first key of each (what the end-of-run report says)."""

    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    first: dict = dataclasses.field(default_factory=dict)
    # each broken sample once, however many epochs pass over it
    _seen: set = dataclasses.field(default_factory=set, repr=False)

    def add(self, reason: str, key: str) -> None:
        if (reason, key) in self._seen:
            return
        self._seen.add((reason, key))
        self.counts[reason] += 1
        self.first.setdefault(reason, key)

    def total(self) -> int:
        return sum(self.counts.values())

    def report(self, what: str) -> str:
        if not self.counts:
            return f"{what}: no sample skipped"
        parts = [f"{n} {reason} (first: {self.first[reason]})" for reason, n in self.counts.items()]
        return f"{what}: skipped {self.total()} samples: " + ", ".join(parts)


def _unit(*parts) -> float:
    """A stable number in [0, 1) from the parts (the same in every process and worker)."""
    return zlib.crc32(":".join(map(str, parts)).encode()) / 2**32


def _own_part(items: list, rank: int, world: int, seed: int) -> list:
    """This rank's fixed share of `items`: a seeded split, disjoint across ranks."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    return [items[i] for i in sorted(order[rank::world])]


def _fingerprint(paths: list[str]) -> str:
    """Names, sizes and times of a set's files: a cache made from other files is never reused."""
    h = hashlib.sha256()
    for p in paths:
        st = os.stat(p)
        h.update(f"{os.path.abspath(p)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


class _Part:
    """A rank's part of a set: `kind` is "files" (a list of entries) or "shards" (tar paths)."""

    def __init__(self, path: str, what: str):
        require_exists(path, what)
        self.path, self.what = path, what
        self.entries: list[Entry] = []
        self.shards: list[str] = []
        self.bad_index_lines = 0

    @property
    def kind(self) -> str:
        return "shards" if self.shards else "files"

    def fingerprint(self) -> str:
        return _fingerprint(self.shards or self.index_files)

    def __len__(self) -> int:
        return len(self.entries) if not self.shards else len(self.shards)


class VideoSet(_Part):
    """`--videos PATH`: a captions file (or a folder holding one) or WebDataset shards."""

    def __init__(self, path: str, clip: ClipSpec = ClipSpec()):
        super().__init__(path, "video set")
        self.clip = clip
        index = captions_file_in(path) if os.path.isdir(path) else None
        if "{" in path or path.endswith(".tar") or (os.path.isdir(path) and index is None):
            self.shards = shard_paths(path)
            self.index_files = self.shards
            if not self.shards:
                raise DataSetError(
                    f"{path} holds neither a captions file (.csv, .jsonl) nor .tar shards"
                )
        else:
            index = index or path
            self.entries, self.bad_index_lines = captions_file_entries(index)
            self.index_files = [index]
            if not self.entries:
                raise DataSetError(f"{index} lists no clip")

    def dataset(self, rank=0, world=1, seed=0, passes=None, shuffle=True):
        if self.shards:
            return _ShardClips(self, rank, world, seed, passes, shuffle)
        return _FileClips(self, _own_part(self.entries, rank, world, seed), seed, passes, shuffle)

    def clip_from(self, source, key: str, epoch: int, seed: int) -> np.ndarray:
        return decode_clip(source, self.clip, _unit(seed, key, epoch))


class ImageSet(_Part):
    """`--images PATH`: a folder of images with optional sidecar .txt captions, or shards."""

    def __init__(self, path: str, size: int = 64):
        super().__init__(path, "image set")
        self.size = size
        is_folder = "{" not in path and not path.endswith(".tar") and os.path.isdir(path)
        if is_folder:
            self.entries = image_folder_entries(path)  # one walk of the folder
            self.index_files = [e.path for e in self.entries]
        if "{" in path or path.endswith(".tar") or (is_folder and not self.entries):
            self.shards = shard_paths(path)
            self.index_files = self.shards
            if is_folder and not self.shards:
                raise DataSetError(f"{path} holds no image ({', '.join(IMAGE_EXTS)}) and no shard")
        elif not is_folder:
            raise DataSetError(f"{path}: an image set is a folder of images or .tar shards")

    def dataset(self, rank=0, world=1, seed=0, passes=None, shuffle=True):
        if self.shards:
            return _ShardImages(self, rank, world, seed, passes, shuffle)
        return _FileImages(self, _own_part(self.entries, rank, world, seed), seed, passes, shuffle)


def _epochs(passes):
    epoch = 0
    while passes is None or epoch < passes:
        yield epoch
        epoch += 1


def _worker_share(items: list) -> list:
    """Inside a DataLoader worker: that worker's items (every worker reads others)."""
    info = torch.utils.data.get_worker_info()
    return items if info is None else items[info.id :: info.num_workers]


class _FileClips(torch.utils.data.IterableDataset):
    """A rank's entries of a captions-file set, reshuffled each epoch, split among workers."""

    def __init__(self, owner, entries, seed, passes, shuffle):
        self.owner, self.entries, self.seed = owner, entries, seed
        self.passes, self.shuffle = passes, shuffle

    def __iter__(self):
        for epoch in _epochs(self.passes):
            order = list(self.entries)
            if self.shuffle:
                random.Random(f"{self.seed}:{epoch}").shuffle(order)
            for entry in _worker_share(order):
                yield self.load(entry, epoch)

    def load(self, entry: Entry, epoch: int) -> dict:
        if not entry.caption:
            return {"key": entry.key, "skipped": "no caption"}
        if not os.path.isfile(entry.path):
            return {"key": entry.key, "skipped": "missing file"}
        try:
            pixels = self.owner.clip_from(entry.path, entry.key, epoch, self.seed)
        except SampleSkipped as skip:
            return {"key": entry.key, "skipped": skip.reason}
        return {"key": entry.key, "pixels": pixels, "caption": entry.caption}


class _FileImages(_FileClips):
    def load(self, entry: Entry, epoch: int) -> dict:
        try:
            with open(entry.path, "rb") as f:
                pixels = decode_image(f.read(64 * 2**20 + 1), self.owner.size)
        except (SampleSkipped, OSError) as err:
            return {"key": entry.key, "skipped": getattr(err, "reason", "unreadable")}
        return {"key": entry.key, "pixels": pixels, "caption": entry.caption}


class _ShardClips(torch.utils.data.IterableDataset):
    """A rank's samples of WebDataset shards: whole shards when there are enough for every
    rank and worker, otherwise every k-th sample of every shard."""

    member_exts = tuple(e.lstrip(".") for e in VIDEO_EXTS)

    def __init__(self, owner, rank, world, seed, passes, shuffle):
        self.owner, self.rank, self.world, self.seed = owner, rank, world, seed
        self.passes, self.shuffle = passes, shuffle

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        workers, worker = (1, 0) if info is None else (info.num_workers, info.id)
        parts, part = self.world * workers, self.rank * workers + worker
        shards = self.owner.shards
        by_shard = len(shards) >= parts
        mine = shards[part::parts] if by_shard else list(shards)
        for epoch in _epochs(self.passes):
            order = list(mine)
            if self.shuffle:
                random.Random(f"{self.seed}:{epoch}:{part}").shuffle(order)
            index = 0
            for path in order:
                try:
                    samples = shard_samples(path)
                    for key, tar, members in samples:
                        index += 1
                        if by_shard or (index - 1) % parts == part:
                            yield self.load(key, tar, members, epoch)
                except (OSError, EOFError, ValueError, tarfile.TarError) as err:  # a broken tar
                    yield {"key": f"{path} ({type(err).__name__})", "skipped": "unreadable"}

    def load(self, key, tar, members, epoch) -> dict:
        video = next((members[e] for e in self.member_exts if e in members), None)
        if video is None:
            return {"key": key, "skipped": "missing file"}
        caption = member_caption(tar, members)
        if not caption:
            return {"key": key, "skipped": "no caption"}
        try:
            pixels = self.owner.clip_from(tar.extractfile(video), key, epoch, self.seed)
        except SampleSkipped as skip:
            return {"key": key, "skipped": skip.reason}
        return {"key": key, "pixels": pixels, "caption": caption}


class _ShardImages(_ShardClips):
    member_exts = tuple(e.lstrip(".") for e in IMAGE_EXTS)

    def load(self, key, tar, members, epoch) -> dict:
        image = next((members[e] for e in self.member_exts if e in members), None)
        if image is None:
            return {"key": key, "skipped": "missing file"}
        try:
            pixels = decode_image(tar.extractfile(image).read(64 * 2**20 + 1), self.owner.size)
        except SampleSkipped as skip:
            return {"key": key, "skipped": skip.reason}
        return {"key": key, "pixels": pixels, "caption": member_caption(tar, members)}


def _keep_as_is(items: list[dict]) -> list[dict]:
    return items


class SampleStream:
    """Exactly `count` usable samples at a time from a set's DataLoader, skips counted."""

    def __init__(self, dataset, workers: int = 0, prefetch: int = 16):
        self.loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=prefetch,
            num_workers=workers,
            collate_fn=_keep_as_is,
            persistent_workers=workers > 0,
        )
        self.skipped = SkipCounts()
        self.seen = 0
        self._iter: Iterator | None = None
        self._buffer: list[dict] = []

    def _refill(self) -> bool:
        if self._iter is None:
            self._iter = iter(self.loader)
        try:
            items = next(self._iter)
        except StopIteration:
            return False
        for item in items:
            if "skipped" in item:
                self.skipped.add(item["skipped"], item["key"])
            else:
                self._buffer.append(item)
        return True

    def take(self, count: int) -> list[dict]:
        """The next `count` samples (fewer only at the end of a finite pass)."""
        while len(self._buffer) < count and self._refill():
            pass
        out, self._buffer = self._buffer[:count], self._buffer[count:]
        self.seen += len(out)
        return out

    def __iter__(self):
        while True:
            batch = self.take(64)
            if not batch:
                return
            yield from batch


def open_video_set(path: str, clip: ClipSpec = ClipSpec()) -> VideoSet:
    return VideoSet(path, clip)


def open_image_set(path: str, size: int = 64) -> ImageSet:
    return ImageSet(path, size)
