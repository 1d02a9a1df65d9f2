"""The caption grammar of the synthetic world and its train / held-out split.

Every clip is described by a `Scene`: a background and one or two objects, each with a
shape, a colour and a motion. Captions are generated from scenes, and the evaluators
predict the same attributes back, so "does the clip follow its prompt" is measured
exactly rather than by a learned text-video similarity.
"""

from __future__ import annotations

import dataclasses
import random

SHAPES = ("circle", "square", "triangle", "star", "cross")
COLOURS = ("red", "green", "blue", "yellow", "purple", "cyan")
BACKGROUNDS = ("black", "gray", "white", "brown")
MOTIONS = (
    "left",
    "right",
    "up",
    "down",
    "diagonal",
    "bouncing",
    "spinning",
    "growing",
    "shrinking",
    "orbiting",
)
MOTION_PHRASES = {
    "left": "moving left",
    "right": "moving right",
    "up": "moving up",
    "down": "moving down",
    "diagonal": "moving diagonally",
    "bouncing": "bouncing",
    "spinning": "spinning",
    "growing": "growing",
    "shrinking": "shrinking",
    "orbiting": "orbiting",
}
# The words a caption can contain; the tokenizer's vocabulary is built from this list.
VOCABULARY = sorted(
    {"a", "and", "on", "background"}
    | set(SHAPES)
    | set(COLOURS)
    | set(BACKGROUNDS)
    | {w for phrase in MOTION_PHRASES.values() for w in phrase.split()}
)


@dataclasses.dataclass(frozen=True)
class ObjectSpec:
    shape: str
    colour: str
    motion: str

    def phrase(self) -> str:
        return f"a {self.colour} {self.shape} {MOTION_PHRASES[self.motion]}"


@dataclasses.dataclass(frozen=True)
class Scene:
    background: str
    objects: tuple[ObjectSpec, ...]

    @property
    def caption(self) -> str:
        return (
            " and ".join(o.phrase() for o in self.objects) + f" on a {self.background} background"
        )


def is_valid(obj: ObjectSpec) -> bool:
    # A spinning circle looks exactly like a still one: no clip could show that caption.
    return not (obj.shape == "circle" and obj.motion == "spinning")


def is_held_out(obj: ObjectSpec) -> bool:
    """About one (shape, colour, motion) combination in six never appears in training.

    Every single attribute still appears in training, only the combination is new, so the
    held-out prompts test compositional generalisation as unseen prompts do in the paper.
    """
    s, c, m = SHAPES.index(obj.shape), COLOURS.index(obj.colour), MOTIONS.index(obj.motion)
    return (s * 7 + c * 3 + m * 5) % 6 == 0


def all_objects(split: str) -> list[ObjectSpec]:
    objects = [ObjectSpec(s, c, m) for s in SHAPES for c in COLOURS for m in MOTIONS]
    objects = [o for o in objects if is_valid(o)]
    if split == "all":
        return objects
    want_held_out = {"train": False, "heldout": True}[split]
    return [o for o in objects if is_held_out(o) == want_held_out]


def sample_scene(rng: random.Random, split: str = "train", two_object_prob: float = 0.3) -> Scene:
    """A random scene whose objects all come from `split` ("train", "heldout" or "all")."""
    pool = all_objects(split)
    first = rng.choice(pool)
    objects = [first]
    if rng.random() < two_object_prob:
        # The second object differs in shape and colour so the caption is unambiguous.
        others = [o for o in pool if o.shape != first.shape and o.colour != first.colour]
        objects.append(rng.choice(others))
    return Scene(rng.choice(BACKGROUNDS), tuple(objects))


def heldout_scenes(count: int, seed: int = 0, two_object_prob: float = 0.0) -> list[Scene]:
    """The fixed evaluation prompts: single objects from held-out combinations."""
    rng = random.Random(seed)
    return [sample_scene(rng, "heldout", two_object_prob) for _ in range(count)]


def with_shape_swapped(scene: Scene) -> Scene:
    """The same scene with each object's shape turned two places on in SHAPES, so no shape maps
    to itself or back: the probes' "the shape word swapped" (scripts/check_teacher.py)."""
    return dataclasses.replace(
        scene,
        objects=tuple(
            dataclasses.replace(o, shape=SHAPES[(SHAPES.index(o.shape) + 2) % len(SHAPES)])
            for o in scene.objects
        ),
    )


def parse_caption(caption: str) -> Scene | None:
    """Inverse of `Scene.caption` for captions from the grammar; None for free text."""
    words = caption.lower().strip().rstrip(".").split()
    if len(words) < 6 or words[-1] != "background" or words[-4:-2] != ["on", "a"]:
        return None
    background = words[-2]
    if background not in BACKGROUNDS:
        return None
    objects = []
    for part in " ".join(words[:-4]).split(" and "):
        tokens = part.split()
        if len(tokens) < 4 or tokens[0] != "a":
            return None
        colour, shape, phrase = tokens[1], tokens[2], " ".join(tokens[3:])
        motion = next((m for m, p in MOTION_PHRASES.items() if p == phrase), None)
        if colour not in COLOURS or shape not in SHAPES or motion is None:
            return None
        objects.append(ObjectSpec(shape, colour, motion))
    return Scene(background, tuple(objects))
