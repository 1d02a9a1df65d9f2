"""One picture per kind of real-footage reference: the reference as the upload preview shows it
(the motion read, drawn on) above the fastvmt transfer at the page's defaults.

    python scripts/make_real_references.py --out real-references
    python scripts/real_transfer_pictures.py --references real-references --out docs/transfer-real

writes <out>/<kind>.jpg (4 of the 8 frames, the reference above, the transfer below).
"""

from __future__ import annotations

import argparse
import os

import cv2
import numpy as np
import torch

from mcm_demo.catalog import Catalog
from mcm_demo.eval.transfer_real import PROMPTS, ROTATION_PROMPTS, load_real_set
from mcm_demo.transfer.core import TransferConfig, transfer
from mcm_demo.transfer.overlay import draw_reading
from mcm_demo.transfer.reading import read_motion
from mcm_demo.video_io import to_uint8

UPSCALE, FRAMES_SHOWN = 3, (0, 2, 5, 7)


def picture(reference: np.ndarray, prompt: str, pipe, student: str) -> np.ndarray:
    shown = draw_reading(reference, read_motion(reference), UPSCALE)
    frames, _ = transfer(pipe, prompt, reference, TransferConfig(), student)
    out = to_uint8(frames)
    out = np.stack(
        [cv2.resize(f, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_NEAREST) for f in out]
    )
    top = np.concatenate([shown[i] for i in FRAMES_SHOWN], 1)
    bottom = np.concatenate([out[i] for i in FRAMES_SHOWN], 1)
    cv2.putText(
        bottom,
        f"fastvmt: {prompt}",
        (4, 14),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.45,
        (255, 210, 0),
        1,
        cv2.LINE_AA,
    )
    return np.concatenate([top, np.full((4, top.shape[1], 3), 255, np.uint8), bottom])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--references", required=True)
    p.add_argument("--out", default="docs/transfer-real")
    p.add_argument("--student", default="mcm-webvid")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    catalog = Catalog()
    pipe = catalog.load_pipeline("embedded")
    catalog.use_student(pipe, "embedded", args.student)
    os.makedirs(args.out, exist_ok=True)
    seen = set()
    for ref in load_real_set(args.references):
        if ref["kind"] in seen:
            continue
        seen.add(ref["kind"])
        prompts = ROTATION_PROMPTS if ref["motion"] == "spinning" else PROMPTS
        image = picture(ref["clip"], prompts[len(seen) % 2], pipe, args.student)
        path = os.path.join(args.out, ref["kind"].replace(" ", "-") + ".jpg")
        cv2.imwrite(path, image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
