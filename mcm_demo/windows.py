"""The window arithmetic of FreeNoise (Qiu et al., ICLR 2024) for clips longer than a teacher's
trained window: which frames each window holds, how their outputs are weighted when fused, how
the first window's noise is reused for the later ones, and how prompts at frame indices become
one text condition per frame ("prompt travel").

Pure functions on shapes and tensors, as diffusers lays them out (`FreeNoiseTransformerBlock`,
`AnimateDiffFreeNoiseMixin`); `free_noise.py` applies them to a UNet's temporal layers.
"""

from __future__ import annotations

import dataclasses
import re

import torch

WEIGHTINGS = ("pyramid", "flat", "hann")
# Windows per pass by default. Measured on the embedded teacher (MCM-webvid 4 steps, 128 frames,
# one CPU thread): all windows in one pass +236 MB over an 8-frame clip; 4 windows' worth
# (32 frames) +40 MB for ~7% more time; one window +22 MB but ~1.5x the time (more, smaller
# calls: on a small UNet the per-call overhead shows). docs/long-video.md, "Cost".
PASS_WINDOWS = 4


@dataclasses.dataclass(frozen=True)
class Windowing:
    """Overlapping windows of `length` frames (the teacher's trained clip length), `stride` apart,
    fused with `weighting`; `noise` "shuffle" reuses the first window's noise, locally shuffled
    (FreeNoise's noise rescheduling), "random" draws every frame's noise afresh.
    `frames_per_pass`: the UNet's layers see at most about this many frames in one pass (the
    temporal layers that many frames' worth of windows, at least one; the spatial layers, which
    work per frame, chunks of it), so a step's working memory does not grow with the clip
    (diffusers' `enable_free_noise_split_inference` does the like for AnimateDiff)."""

    length: int
    stride: int | None = None  # None: half a window (diffusers' AnimateDiff example: 16 / 4)
    weighting: str = "pyramid"
    noise: str = "shuffle"
    frames_per_pass: int | None = None  # None: PASS_WINDOWS windows' worth; 0: all at once

    def __post_init__(self):
        if self.length < 2:
            raise ValueError(f"A window holds at least 2 frames, got {self.length}.")
        stride = self.stride if self.stride is not None else max(1, self.length // 2)
        if not 1 <= stride <= self.length:
            raise ValueError(f"The window stride must be from 1 to {self.length}, got {stride}.")
        object.__setattr__(self, "stride", stride)
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"Unknown weighting {self.weighting!r}; choose from {WEIGHTINGS}.")
        if self.noise not in ("shuffle", "random"):
            raise ValueError(f"Unknown noise {self.noise!r}; choose 'shuffle' or 'random'.")
        per_pass = self.frames_per_pass
        per_pass = PASS_WINDOWS * self.length if per_pass is None else per_pass
        if per_pass < 0:
            raise ValueError(f"Frames per pass is a frame count (0: all), got {per_pass}.")
        object.__setattr__(self, "frames_per_pass", per_pass)


def frame_windows(num_frames: int, length: int, stride: int) -> list[tuple[int, int]]:
    """[start, end) of each window: every `stride` frames from 0, plus one flush with the end
    when the stride does not land there (diffusers' FreeNoise block does the same). A clip no
    longer than a window is one window."""
    if num_frames <= length:
        return [(0, num_frames)]
    windows = [(s, s + length) for s in range(0, num_frames - length + 1, stride)]
    if windows[-1][1] < num_frames:
        windows.append((num_frames - length, num_frames))
    return windows


def window_weights(length: int, weighting: str = "pyramid") -> torch.Tensor:
    """A window's per-frame fusion weights: flat (all 1) or pyramid (1, 2, …, 2, 1: a frame near
    a window's edge, which sees fewer neighbours in it, counts less), as diffusers' FreeNoise."""
    if weighting == "flat":
        return torch.ones(length)
    if weighting == "hann":
        # sin² of the frame's centre: near 0 at both edges, so a window that starts or ends
        # between two frames hands over almost nothing; at half-window strides the windows'
        # weights sum to 1 on every frame (a partition of unity), as in overlap-add
        return torch.sin(torch.pi * (torch.arange(length, dtype=torch.float32) + 0.5) / length) ** 2
    if weighting != "pyramid":
        raise ValueError(f"Unknown weighting {weighting!r}; choose from {WEIGHTINGS}.")
    half = torch.arange(1, (length + 1) // 2 + 1, dtype=torch.float32)
    mirror = half.flip(0)[length % 2 :]  # [1, 2, 2, 1] for 4, [1, 2, 3, 2, 1] for 5
    return torch.cat([half, mirror])


def fusion_weights(
    num_frames: int, windowing: Windowing
) -> list[tuple[tuple[int, int], torch.Tensor]]:
    """Each window with its frames' share of the fused output (the weights normalised per frame
    over the windows that hold it, so the shares of a frame sum to 1 and one window's are
    exactly 1)."""
    windows = frame_windows(num_frames, windowing.length, windowing.stride)
    total = torch.zeros(num_frames)
    for start, end in windows:
        total[start:end] += window_weights(end - start, windowing.weighting)
    return [
        ((start, end), window_weights(end - start, windowing.weighting) / total[start:end])
        for start, end in windows
    ]


def reschedule_noise(
    noise: torch.Tensor, windowing: Windowing, generator: torch.Generator | None = None
) -> torch.Tensor:
    """FreeNoise's noise rescheduling on (B, C, F, h, w) noise: frames past the first window
    take the noise of the `stride` frames one window earlier, in a shuffled order, so every
    window starts from a permutation of the same noise and the clip stays one scene
    (diffusers' `shuffle_context`). Short clips come back unchanged."""
    length, stride = windowing.length, windowing.stride
    num_frames = noise.shape[2]
    if windowing.noise == "random" or num_frames <= length:
        return noise
    noise = noise.clone()
    for i in range(length, num_frames, stride):
        start = max(0, i - length)
        count = min(stride, num_frames - i)
        draw_on = generator.device if generator is not None else "cpu"
        order = torch.randperm(stride, generator=generator, device=draw_on)[:count]
        noise[:, :, i : i + count] = noise[:, :, (start + order).to(noise.device)]
    return noise


# -- prompt travel --------------------------------------------------------------------------
_KEYFRAME = re.compile(r"^\s*(\d+)\s*:\s*(.*\S)\s*$")


def parse_prompt_schedule(lines) -> dict[int, str]:
    """ "FRAME: prompt" lines (a string with one per line, or a list) → {frame: prompt}.
    Raises ValueError naming the line that does not read so."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    schedule: dict[int, str] = {}
    for line in lines:
        if not line.strip():
            continue
        match = _KEYFRAME.match(line)
        if match is None:
            raise ValueError(
                f"Prompt travel lines read 'FRAME: prompt' (e.g. '0: a red circle moving right'), "
                f"got {line.strip()!r}."
            )
        frame = int(match.group(1))
        if frame in schedule:
            raise ValueError(f"Frame {frame} has two prompts.")
        schedule[frame] = match.group(2)
    return dict(sorted(schedule.items()))


def prompt_or_schedule(texts: list[str]) -> str | dict[int, str]:
    """The command line's repeated `--prompt`: one plain prompt, or "FRAME: prompt" lines."""
    if len(texts) == 1 and not _KEYFRAME.match(texts[0]):
        return texts[0]
    return parse_prompt_schedule(texts)


def check_prompt_schedule(schedule: dict[int, str], num_frames: int) -> dict[int, str]:
    if not schedule:
        raise ValueError("Prompt travel needs at least one 'FRAME: prompt' line.")
    if min(schedule) != 0:
        raise ValueError("Prompt travel starts at frame 0: give a '0: …' line.")
    if max(schedule) >= num_frames:
        raise ValueError(
            f"A prompt is set at frame {max(schedule)}, but the clip has frames 0–{num_frames - 1}."
        )
    return schedule


def travel_weights(keyframes: list[int], num_frames: int, ramp: int | None = None) -> torch.Tensor:
    """(F, K): how much of each keyframe's text embedding frame f gets. Each prompt holds, then
    blends linearly into the next over the `ramp` frames before the next keyframe, which is
    fully in from its own frame on; the last prompt holds to the end. `ramp` None blends over
    the whole span between keyframes (diffusers' FreeNoise `_lerp`)."""
    weights = torch.zeros(num_frames, len(keyframes))
    for f in range(num_frames):
        k = max(i for i, start in enumerate(keyframes) if start <= f)
        if k + 1 == len(keyframes):
            weights[f, k] = 1.0
            continue
        start = keyframes[k] if ramp is None else max(keyframes[k], keyframes[k + 1] - ramp)
        a = max(f - start, 0) / (keyframes[k + 1] - start)
        weights[f, k], weights[f, k + 1] = 1 - a, a
    return weights


def interpolate_prompts(
    embeddings: torch.Tensor, keyframes: list[int], num_frames: int, ramp: int | None = None
):
    """(K, T, D) embeddings of the keyframes' prompts → (F, T, D), one per frame."""
    weights = travel_weights(keyframes, num_frames, ramp).to(embeddings)
    return torch.einsum("fk,ktd->ftd", weights, embeddings)
