"""The eval and bench commands end to end on the shipped weights, at toy sizes."""
import math

from mcm_demo.evaluation import bench_steps, format_tables, run_sampler_table


def test_sampler_table_has_every_cell_and_prints_like_table_1():
    results = run_sampler_table(["ddim", "dpm++"], [1, 2], num_clips=4, batch=4, log=lambda *_: None)
    for sampler in ("ddim", "dpm++"):
        for steps in (1, 2):
            cell = results["rows"][sampler][steps]
            assert math.isfinite(cell["fvd"]) and 0 <= cell["alignment"] <= 1
    text = format_tables(results)
    assert "| ddim |" in text and "| dpm++ |" in text and "FVD-like" in text


def test_bench_reports_a_time_per_step_count():
    lines = []
    med = bench_steps([1, 2], repeats=1, log=lines.append)
    assert set(med) == {1, 2} and all(t > 0 for t in med.values())
    assert "x" in lines[0]
