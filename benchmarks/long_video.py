"""Long clips on the embedded teacher and its students: windowed sampling (FreeNoise, the
default past the trained 8 frames) against today's whole clip with the frame-position table
stretched over it, side by side in one run, read with the world's evaluator and the object's
mask. docs/long-video.md has the numbers and the commands that made them.

    python benchmarks/long_video.py consistency --models lcm mcm-webvid --prompts 128
    python benchmarks/long_video.py consistency --models teacher --prompts 16
    python benchmarks/long_video.py travel --prompts 64
    python benchmarks/long_video.py cost --frames-list 8 16 32 64 128

`consistency`: per 8-frame window of 64-frame clips, the evaluator's shape/colour/background
read against the prompt, as a share of the same model's 8-frame clips; whether every window
shows the same object; the object's displacement at window borders over its median inside
them (the seams); whether direction prompts keep their direction. `travel`: two prompts
(frame 0 and frame 32, one attribute changed); the first read on frames 0–23, the second on
40–63. `cost`: seconds and peak memory per clip at each length, each in a fresh process
(`--modes windowed windowed-all-at-once windowed-window-per-pass` compares frames per pass).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import time

import cv2
import numpy as np
import torch

from mcm_demo import catalog as catalog_module
from mcm_demo.embedded.world import COLOURS, SHAPES
from mcm_demo.embedded.world.grammar import heldout_scenes
from mcm_demo.metrics.evaluator import HEADS
from mcm_demo.video_io import to_uint8
from mcm_demo.windows import Windowing

WINDOW = 8  # the embedded teacher's trained length, and the evaluator's clip length
READS = ("shape", "colour", "background")
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1), "diagonal": (1, 1)}
# The pipeline's `windowing` argument. For `cost` (the same clips, another memory and time):
# "windowed-all-at-once" runs every window and frame in one pass, as before frames_per_pass;
# "windowed-window-per-pass" one window's worth (8 frames) per pass.
PER_PASS = {"windowed": None, "windowed-all-at-once": 0, "windowed-window-per-pass": WINDOW}
MODES = {
    "windowed": None,  # the default: windows past 8 frames, 32 frames per pass
    "windowed-all-at-once": Windowing(WINDOW, frames_per_pass=0),
    "windowed-window-per-pass": Windowing(WINDOW, frames_per_pass=WINDOW),
    "stretched": False,
}


TEACHER_STEPS = [50]  # --teacher-steps
CLIP_CACHE = [None]  # --clip-cache: a folder keeping every sampled batch, so a long run resumes
STRIDE = [None]  # --stride: None, the pipeline's default (half a window)
WEIGHTING = ["pyramid"]  # --weighting


def settings(model: str) -> dict:
    """A model's sampling settings (students 4 steps, the teacher DDIM-N + CFG, N=50 unless
    --teacher-steps says otherwise)."""
    if model == "teacher":
        return dict(num_inference_steps=TEACHER_STEPS[0], guidance_scale=5.0)
    return dict(num_inference_steps=4)


def load(model: str):
    cat = catalog_module.Catalog()
    pipe = cat.load_pipeline("embedded")
    sampler = cat.use_student(pipe, "embedded", None if model == "teacher" else model)
    return pipe, sampler, cat


def windowing(mode: str):
    """The pipeline's `windowing` for a mode (windowed at --stride, if given)."""
    if mode in PER_PASS and (STRIDE[0] or WEIGHTING[0] != "pyramid"):
        stride = STRIDE[0] or WINDOW // 2
        return Windowing(WINDOW, stride, WEIGHTING[0], frames_per_pass=PER_PASS[mode])
    return MODES[mode]


def generate(pipe, sampler, model, prompts, frames, mode, seed, batch=8) -> np.ndarray:
    """uint8 clips (N, F, 64, 64, 3), `batch` prompts a call, seeded per batch."""
    clips = []
    for start in range(0, len(prompts), batch):
        cached = batch_cache_path(model, prompts[start : start + batch], frames, mode, seed + start)
        if cached and os.path.exists(cached):
            clips.append(np.load(cached))
            continue
        out = pipe(
            prompts[start : start + batch],
            sampler=sampler,
            num_frames=frames,
            windowing=windowing(mode),
            generator=torch.Generator().manual_seed(seed + start),
            **settings(model),
        )
        clips.append(to_uint8(out))
        if cached:
            np.save(cached + ".tmp.npy", clips[-1])
            os.replace(cached + ".tmp.npy", cached)
    return np.concatenate(clips)


def batch_cache_path(model, prompts, frames, mode, seed) -> str | None:
    """Where --clip-cache keeps one batch: named by everything that decides its pixels."""
    if not CLIP_CACHE[0]:
        return None
    key = json.dumps([model, prompts, frames, mode, seed, settings(model), STRIDE[0], WEIGHTING[0]])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    os.makedirs(CLIP_CACHE[0], exist_ok=True)
    return os.path.join(CLIP_CACHE[0], f"{model}-{mode}-{frames}-{digest}.npy")


@torch.no_grad()
def window_reads(evaluator, clips: np.ndarray) -> dict[str, np.ndarray]:
    """The evaluator's top value per attribute on each 8-frame window: (N, windows) indices."""
    n, f = clips.shape[:2]
    chunks = clips[:, : f - f % WINDOW].reshape(n * (f // WINDOW), WINDOW, *clips.shape[2:])
    reads = {k: [] for k in HEADS}
    for start in range(0, len(chunks), 64):
        x = torch.from_numpy(chunks[start : start + 64]).permute(0, 4, 1, 2, 3).float() / 127.5 - 1
        out = evaluator(x)
        for k in HEADS:
            reads[k].append(out[k].argmax(1).numpy())
    return {k: np.concatenate(v).reshape(n, -1) for k, v in reads.items()}


def truth(scenes, attribute: str) -> np.ndarray:
    values = HEADS[attribute]
    if attribute == "background":
        return np.array([values.index(s.background) for s in scenes])
    return np.array([values.index(getattr(s.objects[0], attribute)) for s in scenes])


def object_track(clip: np.ndarray) -> np.ndarray:
    """(F, 2) centre of the largest blob that differs from the frame's median colour."""
    centres = []
    for frame in clip.astype(np.int16):
        background = np.median(frame.reshape(-1, 3), 0)
        mask = (np.abs(frame - background).sum(-1) > 90).astype(np.uint8)
        count, _, stats, centroids = cv2.connectedComponentsWithStats(mask)
        if count < 2:
            centres.append((np.nan, np.nan))
            continue
        biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        centres.append(tuple(centroids[biggest]))
    return np.array(centres)


def border_ratios(track: np.ndarray, stride: int = WINDOW // 2, offset: int = 0) -> np.ndarray:
    """Each step at a window border (frame k-1 → k, k a multiple of the stride: where a window
    starts or ends) over the clip's median step elsewhere; nan where the object was lost. With
    an `offset`, the same for the steps that many frames past each border: the control, steps
    inside the windows read the same way."""
    steps = np.linalg.norm(np.diff(track, axis=0), axis=1)
    border = np.zeros(len(steps), bool)
    border[stride - 1 :: stride] = True
    inside = np.nanmedian(steps[~border])
    picked = np.zeros(len(steps), bool)
    picked[stride - 1 + offset :: stride] = True
    return steps[picked] / max(inside, 0.25)  # a still object's steps are ~0 px: no 0/0


def pooled_and_worst(ratios: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Every clip's ratios in one array, and each clip's largest (nan where it has none)."""
    worst = np.array([np.nanmax(r) if np.isfinite(r).any() else np.nan for r in ratios])
    return np.concatenate(ratios), worst


def seams(tracks, stride: int = WINDOW // 2) -> dict:
    """The border steps' ratios: every border of every clip, and each clip's worst."""
    pooled, worst = pooled_and_worst([border_ratios(t, stride) for t in tracks])
    return {
        "border steps / median inside step": summary(pooled),
        "border steps within 1.5x": float(np.mean(pooled[np.isfinite(pooled)] <= 1.5)),
        "clip's worst border": summary(worst),
        "clips with every border within 1.5x": float(np.mean(np.nan_to_num(worst, nan=9) <= 1.5)),
        **control(tracks, stride),
        **every_step(tracks),
    }


def every_step(tracks) -> dict:
    """Every step of the clip over the clip's median step, borders or not: the clip's whole
    unevenness, which a window layout that moves its borders between evaluations is judged by
    (docs/long-video.md, "Seams")."""
    ratios = []
    for track in tracks:
        steps = np.linalg.norm(np.diff(track, axis=0), axis=1)
        ratios.append(steps / max(np.nanmedian(steps), 0.25))
    pooled, worst = pooled_and_worst(ratios)
    return {
        "every step / median step": summary(pooled),
        "every step within 1.5x": float(np.mean(pooled[np.isfinite(pooled)] <= 1.5)),
        "clip's worst step": summary(worst),
    }


def control(tracks, stride: int) -> dict:
    """The seam measure on steps half a stride past the borders, inside the windows: how often
    a step of the model's own motion is 1.5× its median where no window starts or ends."""
    pooled, worst = pooled_and_worst([border_ratios(t, stride, offset=stride // 2) for t in tracks])
    return {
        "control: inside steps / median inside step": summary(pooled),
        "control: inside steps within 1.5x": float(np.mean(pooled[np.isfinite(pooled)] <= 1.5)),
        "control: clip's worst inside step": summary(worst),
    }


def longest_reversal(track: np.ndarray, direction) -> int:
    """The longest run of frames moving against `direction` by more than half a pixel."""
    along = np.diff(track, axis=0) @ (np.array(direction) / np.linalg.norm(direction))
    run = best = 0
    for v in along:
        run = run + 1 if v < -0.5 else 0
        best = max(best, run)
    return best


def summary(values) -> str:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not len(v):
        return "n=0"
    q = np.percentile(v, [50, 90, 100])
    return f"median {q[0]:.2f}, p90 {q[1]:.2f}, max {q[2]:.2f} (n={len(v)})"


def consistency(args) -> dict:
    scenes = heldout_scenes(args.prompts, seed=args.seed)
    prompts = [s.caption for s in scenes]
    results = {}
    for model in args.models:
        pipe, sampler, cat = load(model)
        evaluator = cat.load_evaluator()
        short = generate(pipe, sampler, model, prompts, WINDOW, "windowed", args.seed)
        base = window_reads(evaluator, short)
        row = {"8-frame": {a: float((base[a][:, 0] == truth(scenes, a)).mean()) for a in READS}}
        for mode in args.modes:
            t0 = time.perf_counter()
            clips = generate(pipe, sampler, model, prompts, args.frames, mode, args.seed)
            seconds = (time.perf_counter() - t0) / len(clips)
            reads = window_reads(evaluator, clips)
            r = {a: float((reads[a] == truth(scenes, a)[:, None]).mean()) for a in READS}
            r["worst window"] = {
                a: float((reads[a] == truth(scenes, a)[:, None]).mean(0).min()) for a in READS
            }
            same = (reads["shape"] == reads["shape"][:, :1]).all(1) & (
                reads["colour"] == reads["colour"][:, :1]
            ).all(1)
            r["same object in every window"] = float(same.mean())
            tracks = [object_track(c) for c in clips]
            if args.json:  # every clip's track, to read the seams again without sampling
                np.save(f"{args.json}.{model}.{mode}.tracks.npy", np.stack(tracks))
            r.update(seams(tracks, STRIDE[0] or WINDOW // 2))
            reversals = [
                longest_reversal(t, DIRECTIONS[s.objects[0].motion])
                for t, s in zip(tracks, scenes)
                if s.objects[0].motion in DIRECTIONS
            ]
            r["direction clips never reversing over 1 frame"] = (
                float(np.mean(np.array(reversals) <= 1)) if reversals else None
            )
            r["longest reversals"] = summary(reversals)
            r["seconds per clip"] = seconds
            row[mode] = r
            print(f"{model} {mode} {args.frames} frames: {json.dumps(r)}", flush=True)
        for mode in args.modes:
            ratios = {a: row[mode][a] / max(row["8-frame"][a], 1e-9) for a in READS}
            row[mode]["of the 8-frame figure"] = ratios
        results[model] = row
        print(f"{model}: {json.dumps(row, indent=1)}", flush=True)
        if args.save_clips:
            np.savez_compressed(f"{args.save_clips}-{model}.npz", clips=clips[:8])
    return results


def travel_pairs(count: int, seed: int):
    """(scene A, scene B, changed attribute): B is A with its shape, colour or motion changed."""
    rng = random.Random(seed)
    pairs = []
    for i, a in enumerate(heldout_scenes(count, seed=seed)):
        changed = ("shape", "colour", "motion")[i % 3]
        obj = a.objects[0]
        pool = {"shape": SHAPES, "colour": COLOURS, "motion": ("left", "right", "up", "down")}
        value = rng.choice([v for v in pool[changed] if v != getattr(obj, changed)])
        b = dataclasses.replace(a, objects=(dataclasses.replace(obj, **{changed: value}),))
        pairs.append((a, b, changed))
    return pairs


def travel(args) -> dict:
    pairs = travel_pairs(args.prompts, args.seed)
    results = {}
    for model in args.models:
        pipe, sampler, cat = load(model)
        evaluator = cat.load_evaluator()
        clips = []
        for i, (a, b, _) in enumerate(pairs):
            schedule = {0: a.caption, args.frames // 2: b.caption}
            out = pipe(
                schedule,
                sampler=sampler,
                num_frames=args.frames,
                generator=torch.Generator().manual_seed(args.seed + i),
                **settings(model),
            )
            clips.append(to_uint8(out)[0])
        clips = np.stack(clips)
        reads = window_reads(evaluator, clips)
        count = args.frames // WINDOW  # at 64 frames: windows of frames 0–23 and 40–63
        first, second = slice(0, count * 3 // 8), slice(count * 5 // 8, count)
        row = {}
        for changed in ("shape", "colour", "motion"):
            idx = [i for i, p in enumerate(pairs) if p[2] == changed]
            sa, sb = [pairs[i][0] for i in idx], [pairs[i][1] for i in idx]
            got_a = reads[changed][idx][:, first] == truth(sa, changed)[:, None]
            got_b = reads[changed][idx][:, second] == truth(sb, changed)[:, None]
            row[f"{changed} changed"] = {
                "first prompt read on its first 3/8 (0-23 of 64)": float(got_a.mean()),
                "second prompt read on its last 3/8 (40-63 of 64)": float(got_b.mean()),
                "clips": len(idx),
            }
        row.update(seams([object_track(c) for c in clips]))
        results[model] = row
        print(f"{model} travel: {json.dumps(row, indent=1)}", flush=True)
        if args.save_clips:
            np.savez_compressed(f"{args.save_clips}-travel-{model}.npz", clips=clips[:8])
    return results


def cost_one(model: str, frames: int, mode: str, teacher_steps: int, repeats: int) -> dict:
    """A clip's seconds (the fastest of `repeats`: on a shared machine the others are slowed
    by other jobs) and this process's peak memory above what loading and an 8-frame clip took."""
    torch.set_num_threads(1)
    TEACHER_STEPS[0] = teacher_steps
    pipe, sampler, _ = load(model)
    prompt = ["a red circle moving right on a black background"]
    generate(pipe, sampler, model, prompt, WINDOW, "windowed", 0)  # first-call allocations
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        generate(pipe, sampler, model, prompt, frames, mode, 0)
        seconds.append(time.perf_counter() - t0)
    seconds = min(seconds)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "peak_mb_above_8_frames": (peak - loaded) / 1024}


def cost(args) -> dict:
    results = {}
    for model in args.models:
        for frames in args.frames_list:
            for mode in args.modes:
                env = {**os.environ, "OMP_NUM_THREADS": "1"}
                cmd = [sys.executable, __file__, "_cost", model, str(frames), mode]
                cmd += [str(args.teacher_steps), str(args.repeats)]
                out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                r["seconds per frame"] = r["seconds"] / frames
                results.setdefault(model, {}).setdefault(mode, {})[frames] = r
                print(f"{model} {mode} {frames} frames: {json.dumps(r)}", flush=True)
        for mode in args.modes:
            rows = results[model][mode]
            base = rows[args.frames_list[0]]["seconds per frame"]
            for r in rows.values():
                r[f"per frame / {args.frames_list[0]}-frame clip's"] = r["seconds per frame"] / base
        print(f"{model} cost: {json.dumps(results[model], indent=1)}", flush=True)
    return results


def main(argv=None) -> None:
    if argv is None and sys.argv[1:2] == ["_cost"]:
        model, frames, mode, teacher_steps, repeats = sys.argv[2:7]
        print(json.dumps(cost_one(model, int(frames), mode, int(teacher_steps), int(repeats))))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("what", choices=["consistency", "travel", "cost"])
    p.add_argument("--models", nargs="+", default=["lcm", "mcm-webvid"])
    p.add_argument("--prompts", type=int, default=128)
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--frames-list", nargs="+", type=int, default=[8, 16, 32, 64, 128])
    p.add_argument("--modes", nargs="+", default=["windowed", "stretched"], choices=list(MODES))
    p.add_argument("--seed", type=int, default=4300)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--teacher-steps", type=int, default=50, help="the teacher's DDIM steps")
    p.add_argument("--repeats", type=int, default=3, help="cost: clips timed, the fastest kept")
    p.add_argument("--stride", type=int, help="windowed: windows of 8 this many frames apart")
    p.add_argument("--weighting", default="pyramid", help="windowed: the windows' fusion weights")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--clip-cache", help="keep every sampled batch here; a rerun reuses them")
    p.add_argument("--save-clips", help="save 8 clips per model to <prefix>-<model>.npz")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    TEACHER_STEPS[0] = args.teacher_steps
    STRIDE[0] = args.stride
    WEIGHTING[0] = args.weighting
    CLIP_CACHE[0] = args.clip_cache
    results = {"consistency": consistency, "travel": travel, "cost": cost}[args.what](args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
