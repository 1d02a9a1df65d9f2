#!/usr/bin/env bash
# Rebuild weights/teacher (the ×4 teacher) and its six students, stage by stage, as they were
# made. Every stage is seeded and resumable: run the script again after a cut and each stage
# picks up from its last save. Times are for the 2-core CPU (weights/README.md); on a CUDA
# machine the UNet stages move there by themselves.
#
# Bit-for-bit equality needs the same cuts as well: a resumed stage reseeds its noise from
# the step it resumes at, and the shipped runs were resumed at various hundreds.
set -euo pipefail
cd "$(dirname "$0")/.."
train() { python -m mcm_demo train teacher --size x4 "$@"; }
# stages 1-3 ran before the embedding of place existed (the x4 size's default now has it)
plain() { train --no-spatial-positions "$@"; }
share() {  # a later stage reuses the first one's VAE, decoder and latent cache
  mkdir -p "runs/$1/unet"
  ln -sfn ../x4/vae "runs/$1/vae" && ln -sfn ../x4/vae-decoder "runs/$1/vae-decoder"
  for f in latents object_masks; do
    [ -e "runs/$1/unet/$f.safetensors" ] || ln "runs/x4/unet/$f.safetensors" "runs/$1/unet/$f.safetensors"
  done
}

# 1. ×4 VAE (26 min), latent cache, UNet 2,000 steps with the text encoder at CLIP's init
#    (this stage predates the x4 size's std 0.5), decoder fine-tune (18 min)
python -m mcm_demo train vae --size x4 --run-dir runs/x4 --steps 2000
plain --run-dir runs/x4 --text-embedding-std clip --steps 2000 --out runs/x4/export2000

# 2. x4t: the text encoder redrawn at std 0.5, the UNet warm from x4's EMA, 600 steps
share x4t
plain --run-dir runs/x4t --init-unet runs/x4/unet --steps 600 --out runs/x4t/export600

# 3. x4h: x4t's state at 600 continued with half of each batch at the noisiest timesteps
share x4h
[ -e runs/x4h/unet/state.json ] || for f in {,ema_}{unet,text_encoder}.safetensors optimizer.pt state.json; do
  cp "runs/x4t/unet/$f" runs/x4h/unet/
done
plain --run-dir runs/x4h --init-unet runs/x4/unet --high-noise-share 0.5 --steps 1900 --out runs/x4h/export1900

# 4. x4s: x4h's EMA plus the learned embedding of place, 2,600 steps: the shipped teacher
share x4s
train --run-dir runs/x4s --init-unet runs/x4h/unet --high-noise-share 0.5 --steps 2600 \
  --out weights/teacher

# 5. the students on it (LCM 600 steps, 27 min; MCM 300-500 steps, 24-29 min per 300 at one thread). A resumed
#    run reseeds its batches and noise from the step it resumes at, so the two that were resumed are
#    rebuilt the same way: LCM 300 then 600, mcm-laion 300 then 450.
student() { python -m mcm_demo distill --latents runs/x4s/unet/latents.safetensors "$@"; }
student --method lcm --steps 300 --run-dir runs/students/lcm
student --method lcm --steps 600 --run-dir runs/students/lcm --out weights/lcm
# mcm-webvid keeps the discriminator at 1e-4 (its image set carries the watermark, so the stronger
# one has nothing to remove there). One uninterrupted 500-step run: the 500-step snapshot of a
# 600-step run (--snapshot-every 50) was the one that beats LCM at 1, 2 and 4 steps (weights/README)
student --method mcm --variant webvid --steps 500 --disc-lr 1e-4 --run-dir runs/students/mcm-webvid \
  --out weights/mcm-webvid
for v in anime real; do
  student --method mcm --variant "$v" --steps 300 --run-dir "runs/students/mcm-$v" --out "weights/mcm-$v"
done
# mcm-laion at 300 steps still stamped the watermark on 22% of 64 held-out clips; at 450, 2%
student --method mcm --variant laion --steps 300 --run-dir runs/students/mcm-laion
student --method mcm --variant laion --steps 450 --run-dir runs/students/mcm-laion --out weights/mcm-laion
# mcm-3d-cartoon halves the adversarial weight: at the full weight its motion stayed 11-14% under the
# teacher's. One uninterrupted 500-step run (its snapshots at 300-450 were nearer the real set; weights/README)
student --method mcm --variant 3d-cartoon --steps 500 --adv-weight 0.5 --run-dir runs/students/mcm-3d-cartoon \
  --out weights/mcm-3d-cartoon
