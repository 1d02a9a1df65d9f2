#!/usr/bin/env bash
# Re-render the side-by-side exports shown in docs/ (LCM | MCM, 4 steps, seed 0) from the
# shipped weights: `bash scripts/make_comparisons.sh`. Run it again whenever weights/ changes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)  # the per-column mp4s are not kept
python -m mcm_demo compare --prompt "a red circle moving left on a black background" \
  --right mcm-webvid --steps 4 --seed 0 --out-dir "$out" --out docs/comparison-red-circle-left.mp4
python -m mcm_demo compare --prompt "a red square shrinking on a white background" \
  --right mcm-anime --steps 4 --seed 0 --out-dir "$out" --out docs/comparison-red-square-shrinking.mp4
rm -r "$out"
