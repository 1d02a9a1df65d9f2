"""The GPU benchmark's script stays runnable: a tiny random pipeline on the CPU, no timings
asserted (performance belongs to the benchmark's own output)."""

import importlib.util
import json
from pathlib import Path


def test_gpu_modelscope_benchmark_runs_tiny_on_cpu(tmp_path):
    path = Path(__file__).parents[1] / "benchmarks" / "gpu_modelscope.py"
    spec = importlib.util.spec_from_file_location("gpu_modelscope", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "bench.json"
    bench.main(
        [
            "--size",
            "tiny",
            "--device",
            "cpu",
            "--steps",
            "1",
            "2",
            "--repeats",
            "1",
            "--no-compile",
            "--json",
            str(out),
        ]
    )
    rows = json.loads(out.read_text())["sdpa (auto)"]["rows"]
    assert set(rows) == {"teacher", "student 1", "student 2"}
    assert rows["student 2"]["limit"] > 0 and rows["teacher"]["speedup"] == 1.0
