"""The reliability suite: uploads fuzzed with their peak memory, 50 clients at once against a
started app.py, and a soak of 500 requests in a row. Every part asserts what it measures.

    python scripts/reliability.py all              # fuzz, then load, then soak
    python scripts/reliability.py fuzz --count 1200
    python scripts/reliability.py load --clients 50
    python scripts/reliability.py soak --requests 500

The numbers go to <out>/summary.json (--out; a new temp folder by default) and the server's log
beside it. docs/reliability.md holds a run's numbers. Linux only: it reads /proc for memory.
Traffic goes to 127.0.0.1 only, and every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))  # the upload generator the tests use

import av  # noqa: E402
from upload_cases import malformed_uploads  # noqa: E402

from mcm_demo import DEFAULT_PROMPT  # noqa: E402
from mcm_demo.video_io import UploadError, load_reference  # noqa: E402

MIB = 2**20
# A browser waits for a busy server; gradio_client gives up on a POST (/upload, /queue/join)
# after 5 s by default, which a CPU-starved server under 50 clients missed 7 times in one run.
PATIENCE = {"timeout": 120}
REFERENCE = os.path.join(ROOT, "assets", "references", "growing-cyan-cross.gif")


# -- memory of this process --------------------------------------------------------------
def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _peak_during(fn) -> tuple[float, object]:
    """(peak RSS in MiB while fn ran, its result or exception). Linux's clear_refs "5" resets
    the peak (VmHWM) to the current RSS."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    try:
        outcome = fn()
    except Exception as err:  # the caller sorts clear messages from the rest
        outcome = err
    return _status_mib("VmHWM"), outcome


class _Hang(Exception):
    pass


def _within(seconds: int, fn):
    def alarm(*_):
        raise _Hang(f"no answer in {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        return fn()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# -- 1. uploads: fuzz and peak memory ------------------------------------------------------
def _encode(path, frames, width, height, fps=30, options=None):
    with av.open(path, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = options or {}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def issue_clips(folder) -> dict[str, str]:
    """The clips of issue 29 that cost a gigabyte each before, and the costliest one allowed."""

    def pattern(h, w, i):
        return np.broadcast_to(
            ((np.indices((h, w)).sum(0) + 8 * i) % 256).astype(np.uint8)[..., None], (h, w, 3)
        ).copy()

    at = lambda name: os.path.join(folder, name)  # noqa: E731
    sixteen_refs = {"x264-params": "ref=16:bframes=8:level=6.2", "preset": "ultrafast", "crf": "40"}
    return {
        "512x512, 1,400 frames": _encode(
            at("long.mp4"), (pattern(512, 512, i) for i in range(1400)), 512, 512, fps=50
        ),
        "4096x4096, 20 frames (over the 4K area: refused)": _encode(
            at("square4096.mp4"), (pattern(4096, 4096, i) for i in range(20)), 4096, 4096
        ),
        "4096x2, 200 frames": _encode(
            at("thin.mp4"), (pattern(2, 4096, i) for i in range(200)), 4096, 2
        ),
        "4096x2160, 16 reference frames, 24 frames (the costliest allowed)": _encode(
            at("uhd-16refs.mp4"),
            (pattern(2160, 4096, i) for i in range(24)),
            4096,
            2160,
            options=sixteen_refs,
        ),
    }


def run_fuzz(out: str, count: int, size: int = 256) -> dict:
    """Decode the issue's clips and `count` fuzzed files at `size` (ModelScope's 256, the
    largest the app reads); each must give a clip or an UploadError, within 90 s."""
    work = tempfile.mkdtemp(prefix="fuzz-", dir=out)
    idle = _status_mib("VmRSS")
    clips = {}
    for name, path in issue_clips(work).items():
        peak, outcome = _peak_during(lambda p=path: load_reference(p, 8, size))
        clips[name] = {
            "peak_above_idle_mib": round(peak - idle, 1),
            "answer": str(outcome) if isinstance(outcome, Exception) else "decoded",
            "file_kib": round(os.path.getsize(path) / 1024, 1),
        }
        print(f"{name}: {clips[name]}", flush=True)
    worst, unclear, hangs, kinds = (0.0, ""), [], [], {}
    t0 = time.perf_counter()
    for kind, path in malformed_uploads(work, count, seed=29):
        peak, outcome = _peak_during(lambda p=path: _within(90, lambda: load_reference(p, 8, size)))
        worst = max(worst, (peak - idle, f"{kind} {os.path.basename(path)}"))
        if isinstance(outcome, _Hang):
            hangs.append(path)
        elif isinstance(outcome, Exception) and not isinstance(outcome, UploadError):
            unclear.append(f"{kind} {path}: {outcome!r}")
        answer = "decoded" if not isinstance(outcome, Exception) else "message"
        kinds.setdefault(kind, {}).setdefault(answer, 0)
        kinds[kind][answer] += 1
    result = {
        "idle_rss_mib": round(idle, 1),
        "issue_clips": clips,
        "fuzzed_files": count,
        "fuzz_seconds": round(time.perf_counter() - t0, 1),
        "worst_fuzzed_peak_above_idle_mib": round(worst[0], 1),
        "worst_fuzzed_file": worst[1],
        "unclear_exceptions": unclear,
        "hangs": hangs,
        "answers_by_kind": kinds,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "issue_clips"}, indent=1))
    peaks = [c["peak_above_idle_mib"] for c in clips.values()] + [worst[0]]
    assert not unclear and not hangs, (unclear[:5], hangs[:5])
    assert max(peaks) <= 300, f"a decode peaked {max(peaks):.0f} MiB above idle"
    return result


# -- the server ------------------------------------------------------------------------------
class Server:
    """app.py started on a free local port, with its own temp folders and a log file."""

    def __init__(self, out: str, name: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.tmp = tempfile.mkdtemp(prefix=f"{name}-tmp-", dir=out)
        self.log_path = os.path.join(out, f"{name}-server.log")
        env = {
            **os.environ,
            "GRADIO_SERVER_PORT": str(self.port),
            "TMPDIR": self.tmp,  # the app's private folders are made under it
            "GRADIO_TEMP_DIR": os.path.join(self.tmp, "gradio"),
            "GRADIO_ANALYTICS_ENABLED": "False",
            "PYTHONUNBUFFERED": "1",
        }
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self._wait_up()

    def _wait_up(self, timeout: float = 180) -> None:
        import urllib.request

        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited; see {self.log_path}")
            try:
                urllib.request.urlopen(self.url + "config", timeout=5)
                return
            except OSError:
                time.sleep(1)
        raise RuntimeError(f"app.py did not answer in {timeout} s; see {self.log_path}")

    def memory(self) -> tuple[float, int]:
        """(RSS in MiB, open file descriptors) of the server process."""
        import psutil

        p = psutil.Process(self.process.pid)
        return p.memory_info().rss / MIB, p.num_fds()

    def folder_sizes(self) -> dict[str, dict]:
        sizes = {}
        for name in sorted(os.listdir(self.tmp)):
            files, total = 0, 0
            for root, _, names in os.walk(os.path.join(self.tmp, name)):
                for n in names:
                    files += 1
                    total += os.path.getsize(os.path.join(root, n))
            sizes[name] = {"files": files, "kib": round(total / 1024, 1)}
        return sizes

    def tracebacks(self) -> list[str]:
        self.log.flush()
        text = open(self.log_path, errors="replace").read()
        return [line for line in text.splitlines() if "Traceback" in line or "Error" in line]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def compare_args(**overrides) -> dict:
    args = dict(
        prompt=DEFAULT_PROMPT,
        teacher="embedded",
        variant="webvid",
        steps=1,
        seed=0,
        randomize=False,
        frames=8,
        fps=8,
        left="lcm",
        right="mcm-webvid",
        teacher_steps=1,
        guidance=5.0,
    )
    return {**args, **overrides}


def transfer_args(reference: str, **overrides) -> dict:
    from gradio_client import handle_file

    args = dict(
        reference=handle_file(reference),
        prompt_text="a red star on a black background",
        method_name="fastvmt",
        student="mcm-webvid",
        steps_n=2,
        strength_v=0.75,
        inner_n=2,
        tune_n=5,
        motion_text="",
        seed_v=0,
        look="prompt",
    )
    return {**args, **overrides}


def _video(value) -> str | None:
    return value.get("video") if isinstance(value, dict) else value


def _answer(kind: str, result) -> str:
    """'video' or 'message' (a ⚠️ the page shows); anything else is not an answer."""
    if kind == "transfer":
        return "video" if _video(result[1]) else ("message" if "⚠️" in result[3] else "none")
    if _video(result[5]):
        return "video"
    return "message" if any("⚠️" in str(r) for r in result[3::3]) else "none"


def _bad_upload(out: str) -> str:
    path = os.path.join(out, "corrupt.mp4")
    with open(path, "wb") as f:
        f.write(np.random.default_rng(0).bytes(4096))
    return path


def _requests_mix(out: str, n: int, light: bool = False) -> list[tuple[str, str, dict]]:
    """(label, kind, keywords) for n requests: comparisons, transfers and bad requests; `light`
    (the soak's) has 2 comparisons and 1 transfer in 10, the load's 5 and 1."""
    bad = _bad_upload(out)
    if light:
        cycle = [
            ("compare", "compare", lambda i: compare_args(seed=i)),
            ("bad: empty prompt", "compare", lambda i: compare_args(prompt="")),
            ("bad: corrupt upload", "transfer", lambda i: transfer_args(bad)),
            ("bad: model None", "compare", lambda i: compare_args(right=None)),
            ("transfer", "transfer", lambda i: transfer_args(REFERENCE, seed_v=i)),
            ("bad: both models None", "compare", lambda i: compare_args(left=None, right=None)),
            ("compare", "compare", lambda i: compare_args(seed=i, right="mcm-anime")),
            ("bad: corrupt upload", "transfer", lambda i: transfer_args(bad)),
            ("bad: empty prompt", "compare", lambda i: compare_args(prompt="")),
            ("bad: model None", "compare", lambda i: compare_args(left=None)),
        ]
        return [(*cycle[i % len(cycle)][:2], cycle[i % len(cycle)][2](i)) for i in range(n)]
    cycle = [
        ("compare", "compare", lambda i: compare_args(seed=i)),
        ("compare", "compare", lambda i: compare_args(seed=i, right="mcm-anime")),
        ("transfer", "transfer", lambda i: transfer_args(REFERENCE, seed_v=i)),
        ("compare", "compare", lambda i: compare_args(seed=i)),
        ("bad: empty prompt", "compare", lambda i: compare_args(prompt="")),
        ("compare", "compare", lambda i: compare_args(seed=i, left="mcm-laion")),
        ("bad: corrupt upload", "transfer", lambda i: transfer_args(bad)),
        ("compare", "compare", lambda i: compare_args(seed=i)),
        ("bad: model None", "compare", lambda i: compare_args(right=None)),
        ("bad: both models None", "compare", lambda i: compare_args(left=None, right=None)),
    ]
    return [
        (label, kind, make(i))
        for i, (label, kind, make) in ((i, cycle[i % len(cycle)]) for i in range(n))
    ]


def _send(client, kind: str, kwargs: dict, timeout: float) -> tuple[str, str]:
    """(answer, what the client got): 'video' or 'message' (the page's ⚠️), 'queue full'
    (gradio_client's QueueError), 'app error' (an exception the app let through) or 'lost'."""
    try:
        result = client.submit(**kwargs, api_name=f"/{kind}").result(timeout=timeout)
    except Exception as err:  # what a client sees when the server does not answer with a result
        shown = f"{type(err).__name__}: {err}"
        if "Queue is full" in str(err):
            return "queue full", shown
        return ("app error" if type(err).__name__ == "AppError" else "lost"), shown
    return _answer(kind, result), str(result[-1])[:160]


# -- 2. load: 50 clients at once -------------------------------------------------------------
def run_load(out: str, clients: int, leavers: int = 2, timeout: float = 1800) -> dict:
    from gradio_client import Client

    server = Server(out, "load")
    try:
        plan = _requests_mix(out, clients)
        records = [None] * clients
        ready = threading.Barrier(clients + 1)

        def user(i):
            label, kind, kwargs = plan[i]
            client = Client(server.url, verbose=False, httpx_kwargs=PATIENCE)
            ready.wait()
            if kind != "transfer":  # a transfer uploads its clip before it joins the queue:
                time.sleep(3)  # a head start, or the 32 places are gone before any upload ends
            t0 = time.perf_counter()
            answer, shown = _send(client, kind, kwargs, timeout)
            records[i] = {
                "label": label,
                "answer": answer,
                "seconds": time.perf_counter() - t0,
                "shown": shown,
            }

        threads = [threading.Thread(target=user, args=(i,)) for i in range(clients)]
        # clients that leave mid-run: each submits a comparison first, and is killed once the
        # others have joined (its job then running or queued)
        leaving = [_leaving_client(server.url) for _ in range(leavers)]
        left_in = [p.stdout.readline().strip() for p in leaving]  # its job's status then
        for t in threads:
            t.start()
        ready.wait()
        time.sleep(3)
        for p in leaving:
            p.kill()
            p.wait()
        for t in threads:
            t.join(timeout + 60)
        after, _ = _send(
            Client(server.url, verbose=False, httpx_kwargs=PATIENCE),
            "compare",
            compare_args(seed=99),
            600,
        )
        answers = [r["answer"] for r in records]
        waits = sorted(r["seconds"] for r in records if r["answer"] in ("video", "message"))
        full = [r for r in records if r["answer"] == "queue full"]
        result = {
            "clients": clients,
            "leavers_killed_mid_run": left_in,
            "answers": {a: answers.count(a) for a in sorted(set(answers))},
            "by_request": {
                label: {
                    a: sum(1 for r in records if r["label"] == label and r["answer"] == a)
                    for a in sorted(set(answers))
                }
                for label in sorted({r["label"] for r in records})
            },
            "wait_p50_s": round(statistics.median(waits), 1) if waits else None,
            "wait_p95_s": round(waits[int(0.95 * (len(waits) - 1))], 1) if waits else None,
            "queue_full_message": full[0]["shown"] if full else None,
            "queue_full_after_s": round(max((r["seconds"] for r in full), default=0), 2),
            "after_the_run": after,
            "server_log_errors": server.tracebacks(),
            "temp_folders": server.folder_sizes(),
        }
        print(json.dumps(result, indent=1), flush=True)
        assert set(answers) <= {"video", "message", "queue full"}, records
        assert not result["server_log_errors"] and after == "video"
        return result
    finally:
        server.stop()


def _leaving_client(url: str) -> subprocess.Popen:
    """A process that submits a comparison and prints its job's status once the server has it
    (queued or running; at most 120 s); the caller then kills it."""
    code = (
        "from gradio_client import Client; import time, json, sys\n"
        "job = Client(sys.argv[1], verbose=False).submit(**json.loads(sys.argv[2]), "
        "api_name='/compare')\n"
        "deadline = time.time() + 120\n"
        "while time.time() < deadline and job.status().code.name not in "
        "('IN_QUEUE', 'PROCESSING', 'ITERATING', 'FINISHED', 'QUEUE_FULL'):\n"
        "    time.sleep(0.2)\n"
        "print(job.status().code.name, flush=True); time.sleep(600)\n"
    )
    args = json.dumps(compare_args(seed=7))
    return subprocess.Popen(
        [sys.executable, "-c", code, url, args], stdout=subprocess.PIPE, text=True
    )


# -- 3. soak: requests in a row --------------------------------------------------------------
def run_soak(out: str, requests: int) -> dict:
    from gradio_client import Client

    server = Server(out, "soak")
    try:
        client = Client(server.url, verbose=False, httpx_kwargs=PATIENCE)
        samples, answers = [], {}
        t0 = time.perf_counter()
        for i, (label, kind, kwargs) in enumerate(_requests_mix(out, requests, light=True), 1):
            answer = f"{label}: {_send(client, kind, kwargs, 600)[0]}"
            answers[answer] = answers.get(answer, 0) + 1
            rss, fds = server.memory()
            samples.append({"request": i, "rss_mib": round(rss, 1), "fds": fds})
            if i % 50 == 0:
                print(f"request {i}: {samples[-1]} ({time.perf_counter() - t0:.0f} s)", flush=True)
        at = {s["request"]: s for s in samples}
        first, last = at[min(50, requests)], at[requests]
        result = {
            "requests": requests,
            "seconds": round(time.perf_counter() - t0, 1),
            "answers": answers,
            "rss_mib_at": {n: at[n]["rss_mib"] for n in sorted(at) if n % 50 == 0 or n == 1},
            "rss_change_50_to_end": round(last["rss_mib"] / first["rss_mib"] - 1, 3),
            "fds_at_50": first["fds"],
            "fds_at_end": last["fds"],
            "temp_folders": server.folder_sizes(),
            "server_log_errors": server.tracebacks(),
        }
        print(json.dumps(result, indent=1), flush=True)
        assert all(a.endswith((": video", ": message")) for a in answers), answers
        assert abs(result["rss_change_50_to_end"]) <= 0.10
        assert last["fds"] <= first["fds"], "file descriptors leaked"
        assert not result["server_log_errors"]
        return result
    finally:
        server.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("part", choices=["all", "fuzz", "load", "soak"])
    p.add_argument("--out", default=None, help="folder for summary.json and the server logs")
    p.add_argument("--count", type=int, default=1200, help="fuzzed uploads")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--requests", type=int, default=500, help="soak length")
    args = p.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="mcm-demo-reliability-")
    os.makedirs(out, exist_ok=True)
    summary_path = os.path.join(out, "summary.json")
    summary = json.load(open(summary_path)) if os.path.exists(summary_path) else {}
    parts = ["fuzz", "load", "soak"] if args.part == "all" else [args.part]
    for part in parts:
        t0 = time.perf_counter()
        if part == "fuzz":
            summary[part] = run_fuzz(out, args.count)
        elif part == "load":
            summary[part] = run_load(out, args.clients)
        else:
            summary[part] = run_soak(out, args.requests)
        summary[part]["wall_s"] = round(time.perf_counter() - t0, 1)
        with open(summary_path, "w") as f:
            json.dump(summary, f, indent=1)
        print(f"{part}: passed in {summary[part]['wall_s']} s; {summary_path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
