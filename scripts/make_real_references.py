"""Write a set of motion-transfer references made from real photographs (scikit-image's
public-domain `skimage.data` images), never from our own world.

    python scripts/make_real_references.py --out real-references

Each reference is 16 frames at 256×256 (the app samples 8 and reads 64×64), written as an
H.264 mp4 as a phone clip would arrive, with `references.json` naming its kind and the motion
the subject should show (a pan to the right moves the subject left; a zoom in grows it):
photo cut-outs moving in the four directions and diagonally over textured photos, camera pans
both ways, zooms in and out, camera rolls, and two objects of which the larger leads.
`python -m mcm_demo eval-transfer-real --references real-references` measures transfer on it.
"""

from __future__ import annotations

import argparse
import json
import os

import cv2
import numpy as np
from skimage import data

SIZE, FRAMES = 256, 16


def _rgb(image: np.ndarray, tint=(1.0, 1.0, 1.0)) -> np.ndarray:
    """A photo as uint8 RGB; a grey one tinted (grass green, brick red)."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, -1).astype(np.float32) * np.array(tint)
    return np.clip(image[..., :3], 0, 255).astype(np.uint8)


def photos() -> dict[str, np.ndarray]:
    return {
        "grass": _rgb(data.grass(), (0.55, 0.9, 0.45)),
        "gravel": _rgb(data.gravel(), (0.9, 0.85, 0.75)),
        "brick": _rgb(data.brick(), (1.0, 0.7, 0.55)),
        "chelsea": _rgb(data.chelsea()),
        "astronaut": _rgb(data.astronaut()),
        "coffee": _rgb(data.coffee()),
        "rocket": _rgb(data.rocket()),
        "hubble": _rgb(data.hubble_deep_field()),
        "ihc": _rgb(data.immunohistochemistry()),
        "camera": _rgb(data.camera()),
    }


def _fill(image: np.ndarray, size: int) -> np.ndarray:
    """`image` scaled to cover a size×size square, centre-cropped."""
    h, w = image.shape[:2]
    scale = size / min(h, w)
    big = cv2.resize(
        image, (round(w * scale) + 1, round(h * scale) + 1), interpolation=cv2.INTER_AREA
    )
    y, x = (big.shape[0] - size) // 2, (big.shape[1] - size) // 2
    return big[y : y + size, x : x + size]


def cutouts(p: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Subjects as (RGB, alpha) at 96×96: a photo patch, or the horse silhouette in cat fur."""
    horse = cv2.resize((~data.horse()).astype(np.uint8) * 255, (96, 78))
    horse = np.pad(horse, ((9, 9), (0, 0)))
    fur = _fill(p["chelsea"], 96)
    square = np.full((96, 96), 255, np.uint8)
    return {
        "horse": ((fur * 0.45).astype(np.uint8), horse),
        "astronaut": (_fill(p["astronaut"][30:250, 150:370], 96), square),
        "coffee": (_fill(p["coffee"][30:330, 120:420], 96), square),
        "cat": (_fill(p["chelsea"][40:260, 120:340], 96), square),
        "rocket": (_fill(p["rocket"][60:380, 250:470], 96), square),
    }


def _paste(frame: np.ndarray, subject, x: float, y: float, side: int) -> None:
    rgb, alpha = (cv2.resize(a, (side, side), interpolation=cv2.INTER_AREA) for a in subject)
    x0, y0 = round(x - side / 2), round(y - side / 2)
    xs, ys = slice(max(x0, 0), min(x0 + side, SIZE)), slice(max(y0, 0), min(y0 + side, SIZE))
    a = alpha[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0, None] / 255.0
    part = rgb[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    frame[ys, xs] = (frame[ys, xs] * (1 - a) + part * a).astype(np.uint8)


def moving(background, subjects) -> np.ndarray:
    """Subjects (cut-out, side, start (x, y), end (x, y), in shares) over a still photo."""
    base = _fill(background, SIZE)
    clip = []
    for t in np.linspace(0, 1, FRAMES):
        frame = base.copy()
        for subject, side, start, end in subjects:
            x, y = (np.array(start) + t * (np.array(end) - np.array(start))) * SIZE
            _paste(frame, subject, x, y, round(side * SIZE))
        clip.append(frame)
    return np.stack(clip)


def camera(photo, pan=(0.0, 0.0), zoom=1.0, turn=0.0) -> np.ndarray:
    """A camera over a photo: the view moves by `pan` (shares of the view) over the clip, its
    magnification goes from 1 to `zoom`, and it rolls by `turn` degrees (counter-clockwise)."""
    big = _fill(photo, 2 * SIZE)
    c = SIZE
    clip = []
    for t in np.linspace(0, 1, FRAMES):
        m = cv2.getRotationMatrix2D((c, c), turn * t, zoom**t)
        m[:, 2] -= np.array(pan) * t * SIZE * zoom**t
        view = cv2.warpAffine(big, m, (2 * SIZE, 2 * SIZE), borderMode=cv2.BORDER_REFLECT)
        clip.append(view[c - SIZE // 2 : c + SIZE // 2, c - SIZE // 2 : c + SIZE // 2])
    return np.stack(clip)


def real_references() -> list[dict]:
    """name, kind, the motion the subject should show, and the uint8 frames (16, 256, 256, 3)."""
    p = photos()
    s = cutouts(p)
    M = moving  # noqa: N806 (a short name keeps the table short)
    refs = [
        (
            "horse-right-grass",
            "object right",
            "right",
            M(p["grass"], [(s["horse"], 0.4, (0.25, 0.55), (0.7, 0.55))]),
        ),
        (
            "coffee-right-brick",
            "object right",
            "right",
            M(p["brick"], [(s["coffee"], 0.3, (0.2, 0.4), (0.7, 0.4))]),
        ),
        (
            "horse-left-gravel",
            "object left",
            "left",
            M(p["gravel"], [(s["horse"], 0.4, (0.75, 0.5), (0.3, 0.5))]),
        ),
        (
            "astronaut-left-grass",
            "object left",
            "left",
            M(p["grass"], [(s["astronaut"], 0.3, (0.75, 0.6), (0.25, 0.6))]),
        ),
        (
            "astronaut-up-grass",
            "object up",
            "up",
            M(p["grass"], [(s["astronaut"], 0.3, (0.5, 0.75), (0.5, 0.25))]),
        ),
        (
            "rocket-up-hubble",
            "object up",
            "up",
            M(p["hubble"], [(s["rocket"], 0.3, (0.45, 0.75), (0.45, 0.25))]),
        ),
        (
            "coffee-down-gravel",
            "object down",
            "down",
            M(p["gravel"], [(s["coffee"], 0.3, (0.5, 0.25), (0.5, 0.75))]),
        ),
        (
            "cat-down-brick",
            "object down",
            "down",
            M(p["brick"], [(s["cat"], 0.3, (0.4, 0.25), (0.4, 0.75))]),
        ),
        (
            "cat-diagonal-grass",
            "object diagonal",
            "down-right",
            M(p["grass"], [(s["cat"], 0.3, (0.25, 0.25), (0.7, 0.7))]),
        ),
        (
            "rocket-diagonal-gravel",
            "object diagonal",
            "up-right",
            M(p["gravel"], [(s["rocket"], 0.3, (0.25, 0.75), (0.7, 0.3))]),
        ),
        (
            "horse-diagonal-brick",
            "object diagonal",
            "up-left",
            M(p["brick"], [(s["horse"], 0.35, (0.7, 0.7), (0.3, 0.3))]),
        ),
        ("pan-right-chelsea", "pan right", "left", camera(p["chelsea"], pan=(0.35, 0))),
        ("pan-right-coffee", "pan right", "left", camera(p["coffee"], pan=(0.35, 0))),
        ("pan-left-astronaut", "pan left", "right", camera(p["astronaut"], pan=(-0.35, 0))),
        ("pan-left-rocket", "pan left", "right", camera(p["rocket"], pan=(-0.35, 0))),
        ("zoom-in-coffee", "zoom in", "growing", camera(p["coffee"], zoom=1.8)),
        ("zoom-in-ihc", "zoom in", "growing", camera(p["ihc"], zoom=1.8)),
        ("zoom-out-astronaut", "zoom out", "shrinking", camera(p["astronaut"], zoom=1 / 1.8)),
        ("zoom-out-hubble", "zoom out", "shrinking", camera(p["hubble"], zoom=1 / 1.8)),
        ("roll-chelsea", "rotation", "spinning", camera(p["chelsea"], turn=60)),
        ("roll-camera", "rotation", "spinning", camera(p["camera"], turn=-60)),
        (
            "two-horse-coffee-grass",
            "two objects",
            "right",
            M(
                p["grass"],
                [
                    (s["horse"], 0.4, (0.25, 0.3), (0.65, 0.3)),
                    (s["coffee"], 0.15, (0.88, 0.92), (0.88, 0.68)),
                ],
            ),
        ),
        (
            "two-astronaut-cat-gravel",
            "two objects",
            "left",
            M(
                p["gravel"],
                [
                    (s["astronaut"], 0.32, (0.72, 0.3), (0.3, 0.3)),
                    (s["cat"], 0.15, (0.15, 0.6), (0.15, 0.88)),
                ],
            ),
        ),
    ]
    return [dict(name=n, kind=k, motion=m, frames=f) for n, k, m, f in refs]


def main(argv=None) -> int:
    from mcm_demo.video_io import write_mp4

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="real-references")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    manifest = []
    for ref in real_references():
        write_mp4(ref.pop("frames"), os.path.join(args.out, ref["name"] + ".mp4"), fps=16)
        manifest.append({**ref, "file": ref["name"] + ".mp4"})
    with open(os.path.join(args.out, "references.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"{len(manifest)} references in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
