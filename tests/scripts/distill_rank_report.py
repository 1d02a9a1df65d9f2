"""Run under `accelerate launch` by tests/test_distributed.py: the distillation loop on a tiny
teacher, then one JSON report per rank: the samples it read and a hash of what it trained."""

import argparse
import hashlib
import json
import os

import torch

from mcm_demo.catalog import Catalog
from mcm_demo.train.clips import DataConfig
from mcm_demo.train.distill import DistillConfig
from mcm_demo.train.loop import RunConfig, train_distill

p = argparse.ArgumentParser()
p.add_argument("--teacher", required=True)
p.add_argument("--videos", required=True)
p.add_argument("--images")
p.add_argument("--run-dir", required=True)
p.add_argument("--steps", type=int, default=2)
p.add_argument("--batch", type=int, default=1)
p.add_argument("--report", required=True)
p.add_argument("--num-frames", type=int, default=8)
p.add_argument("--whole-box", help="add the whole-frame head on this box (or auto)")
args = p.parse_args()

torch.set_num_threads(1)
pipe = Catalog().load_pipeline(args.teacher, device="cpu", dtype=torch.float32)
cfg = DistillConfig.preset(
    "mcm",
    teacher=args.teacher,
    rank=4,
    batch=args.batch,
    steps=args.steps,
    save_every=1,
    run_dir=args.run_dir,
    adapter_name="mine",
    **(dict(adv_whole_frame=True, adv_whole_box=args.whole_box) if args.whole_box else {}),
)
data = DataConfig(videos=args.videos, images=args.images, workers=0, num_frames=args.num_frames)
distiller = train_distill(cfg, pipe, data, RunConfig(checkpoints_total_limit=2))
digest = hashlib.sha256()
for param in distiller.generator_params + distiller.discriminator_params:
    digest.update(param.detach().numpy().tobytes())
rank = distiller.accelerator.process_index
os.makedirs(args.report, exist_ok=True)
with open(os.path.join(args.report, f"rank{rank}.json"), "w") as f:
    json.dump({"keys": distiller.videos.seen_keys, "trained": digest.hexdigest()}, f)
