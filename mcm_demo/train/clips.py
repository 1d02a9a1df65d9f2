"""What a training loop learns from, on each rank: batches of the video set's latents (cached
once, or encoded as the clips stream in) and the image set's stills for the discriminator.

The synthetic world stays the default and keeps its exact draws (a single process rebuilds
the shipped students bit for bit); a disk set comes through `mcm_demo.data`. Every rank
draws from its own fixed part of the rows or files, so N processes see N disjoint shares.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import time

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..catalog import clip_defaults
from ..data import ClipSpec, DataSetError, SkipCounts, open_image_set, open_video_set
from ..data.sets import SampleStream
from ..data.world import to_model_images, world_image_source
from ..pipeline import encode_clips
from .teacher import cache_latents, load_latents


@dataclasses.dataclass
class DataConfig:
    videos: str | None = None  # a video set on disk (None: the synthetic world)
    images: str | None = None  # an image set on disk (None: the world's variant)
    cache_latents: str | None = None  # encode a disk video set once into this folder
    num_frames: int | None = None  # None: the teacher's own (8 embedded, 16 otherwise)
    frame_stride: int = 1
    fps: float | None = None
    workers: int = 2


def rank_rows(count: int, rank: int, world: int, seed: int) -> list[int]:
    """This rank's fixed share of `count` cached rows; all of them, in order, for one process
    (so a single process draws exactly what it drew before ranks existed)."""
    if world == 1:
        return list(range(count))
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return sorted(order[rank::world])


SEEN_KEYS_KEPT = 10_000  # the first samples a rank drew, by key: what shows ranks are disjoint


class CachedBatches:
    """Random batches of cached latents: `pick` is reseeded from the step, so a resumed run
    draws what an uninterrupted one would."""

    def __init__(self, latents, captions, rank, world, seed, step, description):
        self.latents, self.captions = latents, captions
        self.rows = rank_rows(len(captions), rank, world, seed)
        self.pick = random.Random(seed * 7 + step + 1_000_003 * rank)
        self.description = description
        self.skipped = SkipCounts()
        self.seen_keys: list[str] = []

    def next(self, batch: int):
        idx = self.pick.sample(self.rows, batch)
        if len(self.seen_keys) < SEEN_KEYS_KEPT:
            self.seen_keys += [f"row {i}" for i in idx]
        return self.latents[idx], [self.captions[i] for i in idx]


class StreamedBatches:
    """Batches decoded in DataLoader workers and encoded by the VAE as they arrive."""

    def __init__(self, stream: SampleStream, vae, description):
        self.stream, self.vae, self.description = stream, vae, description
        self.seen_keys: list[str] = []

    @property
    def skipped(self) -> SkipCounts:
        return self.stream.skipped

    def next(self, batch: int):
        items = self.stream.take(batch)
        if len(self.seen_keys) < SEEN_KEYS_KEPT:
            self.seen_keys += [i["key"] for i in items]
        clips = torch.stack([torch.from_numpy(i["pixels"]) for i in items]).numpy()
        return encode_clips(self.vae, clips), [i["caption"] for i in items]


def teacher_pixels(pipe) -> int:
    return pipe.unet.config.sample_size * pipe.vae_scale_factor


def default_frames(teacher: str) -> int:
    """The teacher's own clip length (8 embedded, 16 ModelScope, AnimateDiff and folders)."""
    return clip_defaults(teacher)[0]


def _vae_fingerprint(vae) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(vae.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def check_readable(videos, workers: int = 0) -> None:
    """Stop before the first step when no clip of the set can be used, saying why."""
    stream = SampleStream(videos.dataset(passes=1, shuffle=False), workers=workers)
    if not stream.take(1):
        raise DataSetError(
            f"no readable clip in {videos.path}; " + stream.skipped.report("all of them")
        )


def cached_video_set(videos, vae, folder: str, accelerator, log=print):
    """Encode a disk set once into `folder/<key>/` (key: the set's files, the clip spec and the
    VAE's weights, so a stale cache is never read); every rank encodes its own part, the main
    process writes the file. Returns (latents, captions, skip counts)."""
    spec = dataclasses.asdict(videos.clip)
    key = hashlib.sha256(
        json.dumps([videos.fingerprint(), spec, _vae_fingerprint(vae)]).encode()
    ).hexdigest()[:16]
    path = os.path.join(folder, key, "latents.safetensors")
    skipped = SkipCounts()
    if not os.path.exists(path):
        rank, world = accelerator.process_index, accelerator.num_processes
        stream = SampleStream(videos.dataset(rank, world, passes=1, shuffle=False), workers=2)
        latents, captions, t0 = [], [], time.time()
        while batch := stream.take(32):
            clips = torch.stack([torch.from_numpy(i["pixels"]) for i in batch]).numpy()
            latents.append(encode_clips(vae, clips).cpu())
            captions += [i["caption"] for i in batch]
            if accelerator.is_main_process and len(captions) % 640 < 32:
                log(f"cached {len(captions)} clips of this rank's part {time.time() - t0:.0f}s")
        from accelerate.utils import gather_object

        parts = gather_object([(latents, captions, dict(stream.skipped.counts))])
        if accelerator.is_main_process:
            all_latents = torch.cat([z for part in parts for z in part[0]]).contiguous()
            all_captions = [c for part in parts for c in part[1]]
            os.makedirs(os.path.dirname(path), exist_ok=True)
            meta = {"captions": json.dumps(all_captions), "spec": json.dumps(spec)}
            meta["set"] = videos.path
            save_file({"latents": all_latents}, path + ".tmp", metadata=meta)
            os.replace(path + ".tmp", path)
        for part in parts:
            for reason, n in part[2].items():
                skipped.counts[reason] += n
                skipped.first.setdefault(reason, "while caching")
        accelerator.wait_for_everyone()
    log(f"latent cache {path}")
    with safe_open(path, "pt") as f:
        captions = json.loads(f.metadata()["captions"])
    latents, _ = load_latents(path)
    return latents, captions, skipped


def video_batches(data: DataConfig, cfg, pipe, accelerator, step: int, log=print):
    """The training batches of this rank: the world's cached latents by default, a disk set's
    latent cache with `cache_latents`, otherwise clips streamed from the disk set."""
    rank, world = accelerator.process_index, accelerator.num_processes
    if data.videos is None:
        if accelerator.is_main_process:
            cache_latents(pipe.vae, cfg.num_clips, cfg.seed + 1, cfg.latents, log=log)
        accelerator.wait_for_everyone()
        latents, captions = load_latents(cfg.latents)
        return CachedBatches(latents, captions, rank, world, cfg.seed, step, "the world")
    clip = ClipSpec(
        data.num_frames or default_frames(cfg.teacher),
        teacher_pixels(pipe),
        data.frame_stride,
        data.fps,
    )
    videos = open_video_set(data.videos, clip)
    check_readable(videos)
    if data.cache_latents:
        latents, captions, skipped = cached_video_set(
            videos, pipe.vae, data.cache_latents, accelerator, log
        )
        source = CachedBatches(latents, captions, rank, world, cfg.seed, step, data.videos)
        source.skipped = skipped
        return source
    dataset = videos.dataset(rank, world, seed=cfg.seed + step)
    return StreamedBatches(SampleStream(dataset, workers=data.workers), pipe.vae, data.videos)


class DiskImages:
    """The discriminator's real stills from a disk image set (captions may be missing)."""

    def __init__(self, images, rank, world, seed, workers):
        self.stream = SampleStream(images.dataset(rank, world, seed=seed), workers=workers)

    @property
    def skipped(self) -> SkipCounts:
        return self.stream.skipped

    def __call__(self, count: int, generator: torch.Generator):
        items = self.stream.take(count)
        return to_model_images([i["pixels"] for i in items]), [i["caption"] for i in items]


def image_source(data: DataConfig, cfg, pipe, accelerator, step: int):
    """draw(count, generator) → (images in [-1, 1], captions; None where a still has none)."""
    if data.images is None:
        seed = (
            cfg.seed
            if accelerator.num_processes == 1
            else cfg.seed + 7919 * (accelerator.process_index + 1)
        )
        return world_image_source(cfg.variant, seed)
    images = open_image_set(data.images, teacher_pixels(pipe))
    return DiskImages(
        images, accelerator.process_index, accelerator.num_processes, cfg.seed + step, data.workers
    )
