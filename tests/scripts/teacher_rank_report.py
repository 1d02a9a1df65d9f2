"""Run under `accelerate launch` by tests/test_distributed.py: the teacher's loop on tiny
components and a disk video set, then one JSON report per rank with a hash of its UNet."""

import argparse
import hashlib
import json
import os

import torch

from mcm_demo.embedded.config import TeacherConfig, build_vae
from mcm_demo.train.clips import DataConfig
from mcm_demo.train.loop import process_state
from mcm_demo.train.teacher import UNetTrainConfig, train_unet

p = argparse.ArgumentParser()
p.add_argument("--videos", required=True)
p.add_argument("--run-dir", required=True)
p.add_argument("--report", required=True)
args = p.parse_args()

torch.set_num_threads(1)
torch.manual_seed(0)
model_cfg = TeacherConfig(
    vae_channels=(8, 8, 8, 8),
    text_hidden=16,
    text_layers=1,
    unet_channels=(8, 8, 8),
    unet_heads=2,
    latent_channels=8,
    unet_plain_levels=0,
    unet_spatial_positions=False,
    text_embedding_std=None,
)
vae = build_vae(model_cfg).eval()
cfg = UNetTrainConfig(steps=2, batch=2, image_batch=2, run_dir=args.run_dir, save_every=1)
_, _, unet = train_unet(cfg, vae, model_cfg, data=DataConfig(videos=args.videos, workers=0))
digest = hashlib.sha256()
for tensor in unet.state_dict().values():
    digest.update(tensor.detach().numpy().tobytes())
rank = process_state().process_index
os.makedirs(args.report, exist_ok=True)
with open(os.path.join(args.report, f"rank{rank}.json"), "w") as f:
    json.dump({"unet": digest.hexdigest()}, f)
