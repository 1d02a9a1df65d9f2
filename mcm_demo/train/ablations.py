"""The paper's ablations (Tables 4–6) on the synthetic world: the runs and their tables.

Every row is one distillation setting trained at the same budget (steps × batch) from the
same teacher, seed and video latents, so rows differ only in what the table varies. Rows
shared between tables (the paper's own overlap: Table 4's "+ Adv. + MCD" is Table 5's
"Learnable" and Table 6's λ_real = 1) are trained once.

    python -m mcm_demo ablation train            # every row, one after another (resumable)
    python -m mcm_demo ablation train adv mixed-0 --steps 120
    python -m mcm_demo ablation eval --num-clips 256
"""

from __future__ import annotations

import os

from ..catalog import CheckpointMissing

ROOT = "runs/ablation"
STEPS, BATCH = 100, 8

# Row name → the distillation settings it changes (the rest is DistillConfig's default:
# the MCM recipe against the webvid image set, as the paper's ablations use WebVid).
ROWS = {
    "lcm": dict(motion="raw", adversarial=False, lambda_real=1.0),
    "adv": dict(motion="raw", adversarial=True, lambda_real=1.0),
    "adv-mcd": dict(motion="learnable", adversarial=True, lambda_real=1.0),
    "adv-mcd-mixed": dict(motion="learnable", adversarial=True, lambda_real=0.5),
    "motion-difference": dict(motion="difference", adversarial=True, lambda_real=1.0),
    "motion-correlation": dict(motion="correlation", adversarial=True, lambda_real=1.0),
    "motion-low-frequency": dict(motion="low-frequency", adversarial=True, lambda_real=1.0),
    "motion-high-frequency": dict(motion="high-frequency", adversarial=True, lambda_real=1.0),
    "mixed-0": dict(motion="learnable", adversarial=True, lambda_real=0.0),
}

TABLES = {
    4: (
        "Table 4: each part of MCM (Adv. = frame adversarial loss, MCD = motion consistency "
        "distillation "
        "with the learnable head, Mixed = mixed trajectories, λ_real 0.5)",
        [
            ("LCM", "lcm"),
            ("+ Adv.", "adv"),
            ("+ Adv. + MCD", "adv-mcd"),
            ("+ Adv. + MCD + Mixed", "adv-mcd-mixed"),
        ],
    ),
    5: (
        "Table 5: motion representation (with Adv., λ_real 1)",
        [
            ("Raw latent", "adv"),
            ("Diff.", "motion-difference"),
            ("Corr.", "motion-correlation"),
            ("Low freq.", "motion-low-frequency"),
            ("High freq.", "motion-high-frequency"),
            ("Learnable", "adv-mcd"),
        ],
    ),
    6: (
        "Table 6: mixed trajectory training (learnable head, Adv.)",
        [("λ_real 1", "adv-mcd"), ("λ_real 0.5", "adv-mcd-mixed"), ("λ_real 0", "mixed-0")],
    ),
}


def row_config(row: str, steps: int = STEPS, batch: int = BATCH, root: str = ROOT, **overrides):
    from .distill import DistillConfig

    if row not in ROWS:
        raise ValueError(f"unknown ablation row {row!r}; choose from {', '.join(ROWS)}")
    return DistillConfig(
        **{
            **dict(
                adapter_name=row,
                variant="webvid",
                steps=steps,
                batch=batch,
                run_dir=os.path.join(root, row),
            ),
            **ROWS[row],
            **overrides,
        }
    )


def row_folder(row: str, root: str = ROOT) -> str:
    folder = os.path.join(root, row, "adapter")
    if not os.path.exists(os.path.join(folder, "adapter_config.json")):
        raise CheckpointMissing(
            f"ablation row {row!r} is not trained yet ({folder}); run "
            f"`python -m mcm_demo ablation train {row}`"
        )
    return folder


def format_ablation_tables(results: dict, steps=(1, 2, 4, 8)) -> str:
    """Tables 4–6 in the paper's shape: FVD-like and alignment at each step count per row, then
    motion accuracy (what the motion head is for) and the watermark rate."""
    rows = results["rows"]
    columns = [
        ("fvd", "FVD@{} ↓", "{:.0f}"),
        ("alignment", "align@{} ↑", "{:.3f}"),
        ("acc_motion", "motion@{} ↑", "{:.2f}"),
        ("watermark_rate", "wm@{}", "{:.2f}"),
    ]
    head = "| row | " + " | ".join(title.format(s) for _, title, _ in columns for s in steps) + " |"
    lines = [
        f"Held-out prompts: {results.get('num_clips', '?')} clips a cell; every row "
        f"{results.get('budget', '')}."
    ]
    for number in sorted(TABLES):
        title, table_rows = TABLES[number]
        lines += ["", title, head, "|---|" + "---|" * (len(columns) * len(steps))]
        for label, row in table_rows:
            cells = rows.get(row, {})

            def value(s, key, fmt, cells=cells):
                cell = cells.get(s) or cells.get(str(s))
                return fmt.format(cell[key]) if cell and key in cell else "—"

            lines.append(
                f"| {label} | "
                + " | ".join(value(s, key, fmt) for key, _, fmt in columns for s in steps)
                + " |"
            )
    return "\n".join(lines)
