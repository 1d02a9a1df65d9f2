"""Write the motion-transfer example clips in assets/references (seeded; a few KB each).

    python scripts/make_reference_clips.py

Rendered by the synthetic world in its clean `laion` style at 16 frames (the app samples 8),
enlarged ×4 so they look like ordinary uploads; one is a GIF to show that format works.
"""

import os

from PIL import Image

from mcm_demo.embedded.world import parse_caption, render_clip
from mcm_demo.video_io import write_mp4

CLIPS = {
    "right-red-square.mp4": "a red square moving right on a black background",
    "orbiting-blue-circle.mp4": "a blue circle orbiting on a white background",
    "bouncing-green-star.mp4": "a green star bouncing on a gray background",
    "growing-cyan-cross.gif": "a cyan cross growing on a brown background",
}


def main():
    out = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "references"
    )
    os.makedirs(out, exist_ok=True)
    for i, (name, caption) in enumerate(CLIPS.items()):
        clip = render_clip(parse_caption(caption), "laion", seed=100 + i, num_frames=16)
        path = os.path.join(out, name)
        if name.endswith(".gif"):
            big = [Image.fromarray(f.repeat(4, 0).repeat(4, 1)) for f in clip]
            big[0].save(path, save_all=True, append_images=big[1:], duration=125, loop=0)
        else:
            write_mp4(clip, path, fps=8, upscale=4)
        print(f"{path}: {caption} ({os.path.getsize(path) // 1024} KB)")


if __name__ == "__main__":
    main()
