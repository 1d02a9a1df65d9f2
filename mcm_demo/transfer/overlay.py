"""What was read from a reference, drawn over its frames (the upload preview): the leading
object's box and its track so far, or the camera's motion as an arrow from the centre, and one
line saying which."""

from __future__ import annotations

import cv2
import numpy as np

from .reading import MotionReading

TRACK = (255, 210, 0)  # amber: visible on photos and on every background of the world
TEXT = (255, 255, 255)


def _lines(text: str, scale: float, width: int) -> list[str]:
    """`text` broken at spaces into lines that fit `width` pixels."""
    lines = [""]
    for word in text.split():
        line = f"{lines[-1]} {word}".strip()
        fits = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] <= width
        if fits or not lines[-1]:
            lines[-1] = line
        else:
            lines.append(word)
    return lines


def _label(frame: np.ndarray, text: str) -> None:
    h, w = frame.shape[:2]
    scale = max(0.35, w / 640)
    lines = _lines(text, scale, w - 8)
    step = cv2.getTextSize("Ay", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][1] + 6
    cv2.rectangle(frame, (0, h - step * len(lines) - 4), (w, h), (0, 0, 0), -1)
    for i, line in enumerate(lines):
        y = h - 6 - step * (len(lines) - 1 - i)
        cv2.putText(frame, line, (4, y), cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT, 1, cv2.LINE_AA)


def draw_reading(frames: np.ndarray, reading: MotionReading, upscale: int = 4) -> np.ndarray:
    """uint8 (F, H, W, 3) enlarged `upscale` times, with the reading drawn on: per frame the
    track up to it (object: its box too; camera: the content's motion as an arrow from the
    centre); a clip without usable motion gets the reason instead."""
    big = np.stack(
        [
            cv2.resize(f, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_NEAREST)
            for f in frames
        ]
    )
    h, w = big.shape[1:3]
    points = (reading.track[:, :2] * [w, h]).round().astype(np.int32)
    out = []
    for t, frame in enumerate(big):
        frame = np.ascontiguousarray(frame)
        if reading.usable:
            upto = points[: min(t, len(points) - 1) + 1]
            if reading.source == "camera":
                centre = (w // 2, h // 2)
                tip = tuple(int(v) for v in np.array(centre) + (points[-1] - points[0]))
                if reading.kind in ("growing", "shrinking", "spinning"):
                    radius = int(min(w, h) * 0.2 * min(reading.track[t, 2], 2.0))
                    cv2.circle(frame, centre, radius, TRACK, 2, cv2.LINE_AA)
                    angle = reading.track[t, 3]
                    mark = np.array(centre) + radius * np.array([np.cos(angle), np.sin(angle)])
                    cv2.line(frame, centre, tuple(int(v) for v in mark), TRACK, 2, cv2.LINE_AA)
                else:
                    cv2.arrowedLine(frame, centre, tip, TRACK, 2, cv2.LINE_AA, tipLength=0.25)
            else:
                box = reading.regions[min(t, len(reading.regions) - 1)] if reading.regions else None
                if box is not None:
                    x0, y0, x1, y1 = (box * [w, h, w, h]).round().astype(int)
                    cv2.rectangle(frame, (x0, y0), (x1, y1), TRACK, 1, cv2.LINE_AA)
                cv2.polylines(frame, [upto], False, TRACK, 2, cv2.LINE_AA)
                cv2.circle(frame, tuple(int(v) for v in upto[-1]), 4, TRACK, -1, cv2.LINE_AA)
        _label(frame, reading.describe())
        out.append(frame)
    return np.stack(out)
