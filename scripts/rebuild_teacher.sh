#!/usr/bin/env bash
# Rebuild weights/teacher (the ×4 shape teacher) and its six students, stage by stage, as they
# were made. Every stage is seeded and resumable: run the script again after a cut and each
# stage picks up from its last save. Times are for the 2-core CPU (weights/README.md); on a
# CUDA machine the UNet stages move there by themselves.
#
# Stages 1-4 were trained on the world before its objects grew (docs/shape.md §1): run them at
# commit f49ff67^ (same commands), then stages 5 and 6 at this commit. Bit-for-bit equality
# needs the same cuts as well: a resumed stage reseeds its noise from the step it resumes at,
# and the shipped runs were resumed at various hundreds.
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

# 4. x4s: x4h's EMA plus the learned embedding of place, 2,600 steps: the teacher before shape
share x4s
train --run-dir runs/x4s --init-unet runs/x4h/unet --high-noise-share 0.5 --steps 2600 \
  --out runs/x4s/export2600

# 5. shape: warm from x4s on today's world, each step 8 clips + 128 stills, 10,000 steps
#    (9.5 h at one thread; docs/shape.md). Its EMA at 10,000 is the shipped teacher.
python -m mcm_demo train teacher --base runs/x4s/export2600 --run-dir runs/shape --steps 10000 \
  --batch 8 --image-batch 128 --keep-every 500 --out weights/teacher

# 6. the students on it (one thread each, two side by side; weights/README.md has each one's
#    time). Every student reads the 4,000 clips that distill renders and caches on first use
#    (its own seed, the same world). The learning rates are constant, so a student chosen
#    among the snapshots of a longer run (--snapshot-every 50) is what a run of that many
#    steps makes: LCM's is the 200-step snapshot of a 600-step run (docs/shape.md section 7).
student() { python -m mcm_demo distill "$@"; }
student --method lcm --steps 200 --run-dir runs/students/lcm --out weights/lcm
student --method mcm --variant laion --steps 600 --run-dir runs/students/mcm-laion \
  --out runs/students/mcm-laion-600
# mcm-laion's second stage: the adversarial term weighted to low noise, where the watermark's
# ghost came in (docs/cleanliness.md)
student --method mcm --variant laion --init-from runs/students/mcm-laion-600 --lambda-real 0.25 \
  --adv-weight 2 --adv-frames 4 --adv-timestep-weighting signal --steps 250 \
  --run-dir runs/students/mcm-laion-clean --out runs/students/mcm-laion-250
# its third stage: a whole-frame head taught first on the second stage's frames, with
# mismatched captions, then trained with the student for 300 steps, still taught on the
# student's own 4-step clips (the outlines; docs/cleanliness.md, "The whole-frame head taught
# through the run"). The shipped run was resumed at 150, and a resumed run reseeds its batches
# from the step it resumes at, so it is rebuilt the same way.
python scripts/probe_discriminator.py --student runs/students/mcm-laion-250 --backbone pixels \
  --heads whole --mismatch-negatives --save-whole-head runs/students/mcm-laion-whole-head
third=(--method mcm --variant laion --init-from runs/students/mcm-laion-whole-head --lambda-real 0.25
  --adv-weight 4 --adv-frames 4 --adv-timestep-weighting signal --adv-whole-frame --adv-mismatch
  --adv-whole-sampled-every 10 --run-dir runs/students/mcm-laion-whole)
student "${third[@]}" --steps 150
student "${third[@]}" --steps 300 --out runs/students/mcm-laion-300
# its fourth: the patch heads at a quarter beside the whole-frame head at 2, 50 steps (the
# outlines; docs/cleanliness.md, "MCM-laion with its patch heads at a quarter")
student --method mcm --variant laion --init-from runs/students/mcm-laion-300 --lambda-real 0.25 \
  --adv-weight 0.25 --adv-whole-weight 2 --adv-frames 4 --adv-timestep-weighting signal --adv-whole-frame \
  --adv-mismatch --adv-whole-sampled-every 10 --steps 50 --run-dir runs/students/mcm-laion-fourth \
  --out weights/mcm-laion
student --method mcm --variant real --steps 300 --run-dir runs/students/mcm-real --out runs/students/mcm-real-300
# mcm-real's second stage: the head on the stamp's box at 4, the patch heads at 1 taught that a
# still under another colour word is fake, 100 steps (the stamp's ghost, before the patch heads
# turn green objects on black far towards blue; docs/cleanliness.md, "Patch heads that check the
# colour word")
student --method mcm --variant real --init-from runs/students/mcm-real-300 --lambda-real 0.25 \
  --adv-weight 1 --adv-whole-weight 4 --adv-frames 4 --adv-timestep-weighting signal --adv-whole-frame \
  --adv-whole-box auto --adv-whole-sampled-every 10 --adv-mismatch --adv-mismatch-word colour --steps 100 \
  --run-dir runs/students/mcm-real-box --out weights/mcm-real
student --method mcm --variant anime --steps 300 --run-dir runs/students/mcm-anime \
  --out runs/students/mcm-anime-300
# mcm-anime's second stage: the laion third stage's whole-frame head, 25 steps (its colours,
# alignment and outlines; docs/cleanliness.md, "MCM-anime with the whole-frame head")
python scripts/probe_discriminator.py --student runs/students/mcm-anime-300 --variant anime \
  --backbone pixels --heads whole --mismatch-negatives --save-whole-head runs/students/mcm-anime-whole-head
student --method mcm --variant anime --init-from runs/students/mcm-anime-whole-head --lambda-real 0.25 \
  --adv-weight 4 --adv-frames 4 --adv-timestep-weighting signal --adv-whole-frame --adv-mismatch \
  --adv-whole-sampled-every 10 --steps 25 --run-dir runs/students/mcm-anime-whole --out weights/mcm-anime
# mcm-webvid weighs the discriminator at 0.2: at 1.0 it cost colour and FVD-like at 4-8 steps
# against its own video set (docs/shape.md section 7, "mcm-webvid re-chosen")
student --method mcm --variant webvid --adv-weight 0.2 --steps 300 --run-dir runs/students/mcm-webvid \
  --out weights/mcm-webvid
# mcm-3d-cartoon halves the adversarial weight (at the full weight its motion lagged the teacher's
# on the previous teacher). It was cut at 150 steps and resumed, and a resumed run reseeds its
# batches from the step it resumes at, so it is rebuilt the same way.
student --method mcm --variant 3d-cartoon --adv-weight 0.5 --steps 150 --run-dir runs/students/mcm-3d-cartoon
student --method mcm --variant 3d-cartoon --adv-weight 0.5 --steps 350 --run-dir runs/students/mcm-3d-cartoon \
  --out runs/students/mcm-3d-cartoon-350
# its second stage: a whole-frame head on the box where the video set carries its stamp (found
# in the set) weighed 2, the patch heads kept at the first stage's 0.5, 150 steps (the stamp's
# ghost; docs/cleanliness.md, "The box's head with the patch heads held back")
student --method mcm --variant 3d-cartoon --init-from runs/students/mcm-3d-cartoon-350 --lambda-real 0.25 \
  --adv-weight 0.5 --adv-whole-weight 2 --adv-frames 4 --adv-timestep-weighting signal --adv-whole-frame \
  --adv-whole-box auto --adv-whole-sampled-every 10 --steps 150 --run-dir runs/students/mcm-3d-cartoon-box \
  --out weights/mcm-3d-cartoon
