"""`python -m mcm_demo data …`: write the synthetic world in the layouts a video or image set
may have on disk (an example of each to copy, and the disk twin of the shipped recipe's
data), and read a set once to see what a run would skip."""

from __future__ import annotations

import itertools
import time

from ..data import ClipSpec, DataSetError, open_image_set, open_video_set
from ..data.sets import SampleStream
from ..data.world import world_clips, world_stills
from ..data.writers import IMAGE_LAYOUTS, VIDEO_LAYOUTS, write_image_set, write_video_set
from ..embedded.world import IMAGE_SET_VARIANTS
from ..pipeline import PipelineInputError


def add_data(sub) -> None:
    p = sub.add_parser("data", help="export the synthetic world as a dataset on disk; check a set")
    verbs = p.add_subparsers(dest="verb", required=True)
    e = verbs.add_parser(
        "export-world",
        help="the video set (and an image set) the shipped recipe trains on, as files",
    )
    e.add_argument("--out", required=True, help="folder to write (videos/ and images/ inside)")
    e.add_argument("--layout", choices=VIDEO_LAYOUTS, default="webvid")
    e.add_argument(
        "--num-clips", type=int, default=4000, help="clips (distill caches the first 4,000)"
    )
    e.add_argument(
        "--seed", type=int, default=1, help="the clip stream's seed (distill --seed S uses S + 1)"
    )
    e.add_argument("--crf", type=int, default=18, help="H.264 quality of the clips (lower: closer)")
    e.add_argument("--images-variant", choices=IMAGE_SET_VARIANTS, help="also write its stills")
    e.add_argument("--num-images", type=int, default=10000)
    e.add_argument("--image-layout", choices=IMAGE_LAYOUTS, default="shards")
    e.add_argument(
        "--image-seed", type=int, default=0, help="the stills' seed (distill --seed S uses S)"
    )
    e.set_defaults(func=cmd_export_world)
    c = verbs.add_parser("check", help="read a video or image set once; count what is skipped")
    c.add_argument("--videos")
    c.add_argument("--images")
    c.add_argument("--num-frames", type=int, default=8)
    c.add_argument("--size", type=int, default=64)
    c.add_argument("--frame-stride", type=int, default=1)
    c.add_argument("--fps", type=float)
    c.add_argument("--workers", type=int, default=2)
    c.set_defaults(func=cmd_check)


def cmd_export_world(args) -> int:
    t0 = time.time()
    clips, captions = [], []
    for chunk, chunk_captions in world_clips(args.num_clips, args.seed):
        clips.extend(chunk)
        captions.extend(chunk_captions)
    path = write_video_set(clips, captions, f"{args.out}/videos", args.layout, crf=args.crf)
    print(f"{len(clips)} clips → --videos '{path}' ({time.time() - t0:.0f}s)")
    if args.images_variant:
        stills = list(
            itertools.islice(world_stills(args.images_variant, args.image_seed), args.num_images)
        )
        images, image_captions = zip(*stills)
        path = write_image_set(images, image_captions, f"{args.out}/images", args.image_layout)
        print(f"{len(images)} {args.images_variant} stills → --images '{path}'")
    return 0


def cmd_check(args) -> int:
    if not (args.videos or args.images):
        raise PipelineInputError("name a set: --videos PATH and/or --images PATH")
    try:
        sets = []
        if args.videos:
            spec = ClipSpec(args.num_frames, args.size, args.frame_stride, args.fps)
            sets.append(("videos", open_video_set(args.videos, spec)))
        if args.images:
            sets.append(("images", open_image_set(args.images, args.size)))
    except DataSetError as err:
        raise PipelineInputError(str(err)) from None
    for what, data_set in sets:
        t0 = time.time()
        stream = SampleStream(data_set.dataset(passes=1, shuffle=False), workers=args.workers)
        usable = sum(1 for _ in stream)
        rate = usable / max(time.time() - t0, 1e-9)
        print(f"{what} {data_set.path}: {usable} usable samples ({rate:.0f}/s)")
        print(stream.skipped.report(what))
    return 0
