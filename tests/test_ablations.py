"""The ablation rows (Tables 4–6) vary exactly what their table varies, and print in its shape."""

import dataclasses

import pytest

from mcm_demo.app.cli import main
from mcm_demo.catalog import CheckpointMissing
from mcm_demo.train.ablations import ROWS, TABLES, format_ablation_tables, row_config, row_folder

VARIED = {4: None, 5: {"motion"}, 6: {"lambda_real"}}


def _differences(a, b):
    da, db = dataclasses.asdict(a), dataclasses.asdict(b)
    return {k for k in da if da[k] != db[k]} - {"adapter_name", "run_dir"}


@pytest.mark.parametrize("number", sorted(TABLES))
def test_rows_of_a_table_differ_only_in_what_it_varies(number):
    configs = [row_config(row) for _, row in TABLES[number][1]]
    for c in configs:
        assert (c.steps, c.batch, c.seed, c.variant, c.teacher) == (
            configs[0].steps,
            configs[0].batch,
            0,
            "webvid",
            "embedded",
        )
    if VARIED[number]:
        for c in configs[1:]:
            assert _differences(configs[0], c) <= VARIED[number]


def test_table_4_adds_one_part_a_row():
    lcm, adv, mcd, mixed = (row_config(row) for _, row in TABLES[4][1])
    assert (lcm.adversarial, lcm.motion, lcm.lambda_real) == (False, "raw", 1.0)
    assert _differences(lcm, adv) == {"adversarial"}
    assert _differences(adv, mcd) == {"motion"} and mcd.motion == "learnable"
    assert _differences(mcd, mixed) == {"lambda_real"} and mixed.lambda_real == 0.5


def test_every_row_is_in_a_table_and_unknown_rows_are_refused():
    assert {row for _, rows in TABLES.values() for _, row in rows} == set(ROWS)
    with pytest.raises(ValueError, match="unknown ablation row"):
        row_config("adv-typo")


def test_untrained_row_names_the_command(tmp_path, capsys):
    with pytest.raises(CheckpointMissing, match="ablation train adv"):
        row_folder("adv", str(tmp_path))
    assert main(["ablation", "eval", "adv", "--root", str(tmp_path)]) == 3
    assert "ablation train adv" in capsys.readouterr().err


def test_tables_print_in_the_papers_shape():
    cell = {"fvd": 321.4, "alignment": 0.5, "acc_motion": 0.875, "watermark_rate": 0.25}
    results = {
        "num_clips": 4,
        "budget": "150 steps × batch 8",
        "rows": {"lcm": {1: cell, 2: cell, 4: cell, 8: cell}},
    }
    text = format_ablation_tables(results)
    assert "Table 4" in text and "Table 5" in text and "Table 6" in text
    assert "| LCM | 321 | 321 | 321 | 321 | 0.500 | 0.500 | 0.500 | 0.500 | 0.88 |" in text
    assert "motion@4 ↑" in text
    assert "| + Adv. | — |" in text  # a row not run yet shows as a dash, not an error


def test_show_merges_rows_evaluated_in_separate_runs(tmp_path, capsys):
    import json

    cell = {"fvd": 100.0, "alignment": 0.5, "watermark_rate": 0.1}
    for name, row in (("a.json", "lcm"), ("b.json", "mixed-0")):
        (tmp_path / name).write_text(
            json.dumps({"num_clips": 4, "budget": "x", "rows": {row: {"4": cell}}})
        )
    assert main(["ablation", "show", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert "| LCM | — | — | 100 |" in out and "| λ_real 0 | — | — | 100 |" in out


def test_show_without_or_with_a_wrong_file_says_what_it_wants(tmp_path, capsys):
    assert main(["ablation", "show"]) == 2
    assert "ablation eval --json" in capsys.readouterr().err
    (tmp_path / "other.json").write_text('{"fvd": 1}')
    for path in (tmp_path / "other.json", tmp_path / "missing.json"):
        assert main(["ablation", "show", str(path)]) == 2
        assert "is not an `ablation eval --json` file" in capsys.readouterr().err
