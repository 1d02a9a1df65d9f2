"""What can be loaded, where it lives, and the one cached pipeline per teacher.

The only module that knows checkpoint names. The embedded teacher and its students live in
`weights/`; the real teachers and the seven published MCM adapters come from the Hugging
Face hub through `huggingface_hub` (`python -m mcm_demo fetch …`), and are then read from
its local cache, so a machine that fetched once runs offline.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections import OrderedDict
from pathlib import Path

import torch

from . import competitors, hub
from .adapters import find_adapter_folders
from .embedded.world import IMAGE_SET_VARIANTS
from .metrics import ToyEvaluator
from .pipeline import TextToVideoPipeline
from .previews import TinyDecoder, TinyPreview, fit_to_vae
from .real_teachers import assemble_animatediff, enable_cuda_savings

DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
# The style variants of the published MCM checkpoints; the embedded world's image sets are
# named after them, so the world defines the list and the catalogue is where the rest reads it.
VARIANTS = IMAGE_SET_VARIANTS
PUBLISHED_ADAPTER_REPO = "yhzhai/mcm"
# The public tiny autoencoder for SD-family latents (TAESD): the real teachers' previews.
TINY_SD_AUTOENCODER = "madebyollin/taesd"
# The prompt every entry point starts from (the page, the CLI, the benchmarks).
DEFAULT_PROMPT = "a red circle moving left on a black background"


def variant_of(model: str) -> str | None:
    """ "mcm-anime" → "anime"; None for any other model name."""
    if not isinstance(model, str):  # an API client's None: the request's check says so
        return None
    return model.removeprefix("mcm-") if model.startswith("mcm-") else None


@dataclasses.dataclass(frozen=True)
class Teacher:
    name: str
    label: str
    repo: str | None = (
        None  # hub id of the pipeline (ModelScope) or of the SD1.5 base (AnimateDiff)
    )
    motion_adapter: str | None = None  # AnimateDiff's motion module, on top of `repo`
    published: tuple[str, ...] = ()  # variants with a published MCM adapter ("<prefix>-<variant>")
    prefix: str = ""
    has_lcm: bool = False  # an LCM baseline adapter exists (ours, for the embedded teacher)
    # Clips as the teacher makes them: the published students were distilled and demoed at 16
    # frames, written at ~7 fps (DESIGN §4); the embedded world's clips have 8 (README). The
    # resolution is the teacher's own, read from its configs (`Catalog.clip_size`).
    frames: int = 16
    fps: float = 7.0

    @property
    def repos(self) -> list[str]:
        return [r for r in (self.repo, self.motion_adapter) if r]


TEACHERS = {
    "embedded": Teacher(
        "embedded",
        "Embedded (synthetic world, CPU)",
        published=VARIANTS,
        has_lcm=True,
        frames=8,
        fps=8.0,
    ),
    "modelscope": Teacher(
        "modelscope",
        "ModelScopeT2V 1.7B",
        repo="ali-vilab/text-to-video-ms-1.7b",
        published=VARIANTS,
        prefix="modelscopet2v",
    ),
    # AnimateDiff's MCM adapters sit on the motion UNet over an SD1.5 base: Realistic Vision
    # V6 by default, as the official MCM demo; epiCRealism as its option.
    "animatediff": Teacher(
        "animatediff",
        "AnimateDiff (Realistic Vision V6)",
        repo="SG161222/Realistic_Vision_V6.0_B1_noVAE",
        motion_adapter="guoyww/animatediff-motion-adapter-v1-5-2",
        published=("webvid", "laion"),
        prefix="animatediff",
    ),
    "animatediff-epicrealism": Teacher(
        "animatediff-epicrealism",
        "AnimateDiff (epiCRealism)",
        repo="emilianJR/epiCRealism",
        motion_adapter="guoyww/animatediff-motion-adapter-v1-5-2",
        published=("webvid", "laion"),
        prefix="animatediff",
    ),
}


def clip_defaults(teacher: str) -> tuple[int, float]:
    """Frames and fps a teacher's clips have by default; a pipeline folder or hub id outside
    the catalogue gets diffusers' text-to-video default of 16 frames."""
    t = TEACHERS.get(teacher, Teacher(teacher, teacher))
    return t.frames, t.fps


class CheckpointMissing(RuntimeError):
    """A checkpoint is not on disk; the message names the command that makes or fetches it."""


def student_names(teacher: str) -> list[str]:
    """The few-step students a teacher offers: "lcm" (where it exists) and "mcm-<variant>"."""
    t = TEACHERS.get(teacher)
    if t is None:  # a local folder or hub id: only students the caller names explicitly
        return []
    return (["lcm"] if t.has_lcm else []) + [f"mcm-{v}" for v in t.published]


def competitor_names(teacher: str) -> list[str]:
    """The paper's competitors a teacher offers (competitors.py): AnimateDiff's only."""
    t = TEACHERS.get(teacher)
    return list(competitors.COMPETITORS) if t is not None and t.motion_adapter else []


# -- downloads -------------------------------------------------------------------------
def _snapshot(repo: str, allow_patterns=None, offline: bool = True, progress=None) -> str:
    """The local folder of a hub repo; with offline=True, only what is already cached."""
    from huggingface_hub import snapshot_download

    kwargs = {"allow_patterns": allow_patterns, "local_files_only": offline}
    if progress is not None and not offline:
        kwargs["tqdm_class"] = progress
    return snapshot_download(repo, **kwargs)


def fetch_command(teacher: str, variant: str | None = None) -> str:
    return f"python -m mcm_demo fetch {teacher}" + (f" --variant {variant}" if variant else "")


def _cached(repo: str, what: str, command: str, allow_patterns=None) -> str:
    try:
        return _snapshot(repo, allow_patterns, offline=True)
    except Exception as err:  # not in the cache (offline) or no such repo
        raise CheckpointMissing(
            f"{what} ({repo}) is not downloaded; fetch it with `{command}` "
            f"(needs internet once). [{type(err).__name__}]"
        ) from None


def default_device_dtype(device: str | None = None, dtype: torch.dtype | None = None):
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return device, dtype or (torch.float16 if device.startswith("cuda") else torch.float32)


def device_key(device: str | torch.device) -> str:
    """One name per device: "cuda", "cuda:0" and torch.device("cuda", 0) are all "cuda:0" (on
    a machine whose current GPU is 0), so a lock named by it is one lock per device."""
    device = torch.device(device)
    if device.type == "cpu" or device.index is not None:
        return str(device)
    current = (
        torch.cuda.current_device() if device.type == "cuda" and torch.cuda.is_available() else 0
    )
    return f"{device.type}:{current}"


class Catalog:
    """Teachers and students → folders under `weights_dir` (the embedded default) or the hub
    cache, and one cached pipeline per (teacher, device, dtype): at most `max_pipelines` of
    them, the least recently used evicted. The app owns one; the CLI makes one per command."""

    def __init__(
        self,
        weights_dir: str | os.PathLike = DEFAULT_WEIGHTS,
        max_pipelines: int = 2,
        adapters_dir: str | None = None,
    ):
        self.weights_dir = Path(weights_dir)
        # your own students (`--adapters DIR`): name → (folder, teacher)
        try:
            self.user_adapters = find_adapter_folders(adapters_dir) if adapters_dir else {}
        except FileNotFoundError as err:  # said as a missing checkpoint: app.py prints it
            raise CheckpointMissing(str(err)) from None
        for name, (folder, teacher) in list(self.user_adapters.items()):
            if teacher not in TEACHERS or name in student_names(teacher):
                del self.user_adapters[name]
                why = (
                    f"it was distilled on {teacher!r}, which the app does not serve"
                    if teacher not in TEACHERS
                    else f"{name!r} is a shipped student's name; rename the folder"
                )
                print(f"--adapters: {folder} left out: {why}")
        self.max_pipelines = max_pipelines
        self._pipelines: OrderedDict[tuple, TextToVideoPipeline] = OrderedDict()
        self._lock = threading.Lock()  # guards the two dicts only, never held through a load
        self._loading: dict[tuple, threading.Lock] = {}  # one load at a time per key

    @property
    def teacher_folder(self) -> Path:
        return self.weights_dir / "teacher"

    @property
    def evaluator_folder(self) -> Path:
        return self.weights_dir / "evaluator"

    def students(self, teacher: str) -> list[str]:
        """The shipped or published students of `teacher`, the paper's competitors on it,
        then your own (`adapters_dir`)."""
        own = [n for n, (_, t) in self.user_adapters.items() if t == teacher]
        return student_names(teacher) + competitor_names(teacher) + own

    def student_folder(self, teacher: str, name: str) -> str:
        """The adapter folder of a student ("lcm", "mcm-anime", one of yours) of a teacher."""
        if name in self.user_adapters:
            folder, trained_on = self.user_adapters[name]
            if trained_on != teacher:
                raise CheckpointMissing(
                    f"{name} was distilled on the {trained_on} teacher, not on {teacher}"
                )
            return folder
        t = TEACHERS[teacher]
        if name not in student_names(teacher):
            raise CheckpointMissing(
                f"{t.label} has no student {name!r}; it has {student_names(teacher)}"
            )
        if teacher == "embedded":
            folder = self.weights_dir / name
            if not (folder / "adapter_model.safetensors").exists():
                how = (
                    "--method lcm"
                    if name == "lcm"
                    else f"--method mcm --variant {variant_of(name)}"
                )
                raise CheckpointMissing(
                    f"the {name} adapter is missing at {folder}; train it with "
                    f"`python -m mcm_demo distill {how} --out {folder}` (see weights/README.md)"
                )
            return str(folder)
        sub = f"{t.prefix}-{variant_of(name)}"
        root = _cached(
            PUBLISHED_ADAPTER_REPO,
            f"the published adapter {sub}",
            fetch_command(teacher, variant_of(name)),
            [f"{sub}/*"],
        )
        return os.path.join(root, sub)

    def load_pipeline(
        self,
        teacher: str = "embedded",
        device: str | None = None,
        dtype: torch.dtype | None = None,
        rival: competitors.Checkpoint | None = None,
    ) -> TextToVideoPipeline:
        """The cached pipeline of `teacher`, or of a competitor's checkpoint on it (`rival`),
        loaded once per (teacher, competitor checkpoint, device, dtype).

        `teacher` is a catalogue name, a local pipeline folder or a hub id (owner/name).
        """
        if teacher not in TEACHERS and not (os.path.isdir(teacher) or teacher.count("/") == 1):
            raise CheckpointMissing(
                f"unknown teacher {teacher!r}; choose from {sorted(TEACHERS)}, "
                "a local pipeline folder or a hub id"
            )
        device, dtype = default_device_dtype(device, dtype)
        key = (teacher + (f"+{rival.name}" if rival else ""), device_key(device), dtype)
        with self._lock:
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # a second caller of the same key waits for the first's pipeline
            with self._lock:
                if key in self._pipelines:
                    self._pipelines.move_to_end(key)
                    return self._pipelines[key]
            pipe = self._load(teacher, dtype, rival).to(device)
            if device.startswith("cuda"):
                enable_cuda_savings(pipe)
            with self._lock:
                self._pipelines[key] = pipe
                while len(self._pipelines) > self.max_pipelines:
                    self._pipelines.popitem(last=False)  # callers that hold it finish with it
            return pipe

    @property
    def preview_folder(self) -> Path:
        return self.weights_dir / "preview"

    def preview_decoder(self, pipe, teacher: str = "embedded"):
        """The cheap decoder of the per-step previews of `teacher`'s pipeline (latents →
        frames in [0, 1]), made on first use and kept with the pipeline. Callers hold the
        device's lock."""
        if getattr(pipe, "preview_decoder", None) is None:
            pipe.preview_decoder = self._preview_decoder(teacher, pipe)
        return pipe.preview_decoder

    def _preview_decoder(self, teacher: str, pipe):
        """The embedded teacher's distilled tiny decoder; for the others the public tiny SD
        autoencoder when it is in the hub cache (`fetch` gets it), else a linear map fitted
        to the VAE (previews.py)."""
        if teacher == "embedded" and (self.preview_folder / "tiny-decoder.safetensors").exists():
            path = self.preview_folder / "tiny-decoder.safetensors"
            return TinyDecoder.load(str(path)).to(pipe.device)
        if teacher in TEACHERS and TEACHERS[teacher].repos:
            try:
                from diffusers import AutoencoderTiny

                folder = _snapshot(TINY_SD_AUTOENCODER, offline=True)
                tiny = AutoencoderTiny.from_pretrained(
                    folder, torch_dtype=pipe.vae.dtype, variant=hub.weights_variant(folder)
                )
                return TinyPreview(tiny.to(pipe.device))
            except Exception:  # not cached (offline): the linear map reads colours well enough
                pass
        return fit_to_vae(pipe.vae)

    def loaded(self) -> list[tuple]:
        """The (teacher, device, dtype) keys of the cached pipelines, least recently used first."""
        with self._lock:
            return list(self._pipelines)

    def clip_size(self, teacher: str = "embedded") -> int:
        """The side in pixels of the clips `teacher` makes, read from its configs: nothing is
        loaded (the upload preview asks while a generation holds the device)."""
        with self._lock:
            for (name, _, _), pipe in self._pipelines.items():
                if name == teacher:
                    return pipe.unet.config.sample_size * pipe.vae_scale_factor
        folder = Path(self._pipeline_folder(teacher))
        unet = json.loads((folder / "unet" / "config.json").read_text())
        vae = json.loads((folder / "vae" / "config.json").read_text())
        sample_size = unet["sample_size"]
        sample_size = sample_size[0] if isinstance(sample_size, list) else sample_size
        return sample_size * 2 ** (len(vae["block_out_channels"]) - 1)

    def _pipeline_folder(self, teacher: str) -> str:
        """The folder holding `teacher`'s unet/ and vae/ (AnimateDiff's: its SD1.5 base)."""
        if teacher == "embedded":
            if not (self.teacher_folder / "model_index.json").exists():
                raise CheckpointMissing(
                    f"the embedded teacher is missing at {self.teacher_folder}; rebuild it with "
                    "`python -m mcm_demo train teacher` (see weights/README.md)"
                )
            return str(self.teacher_folder)
        t = TEACHERS.get(teacher)
        if t is not None:
            return _cached(t.repo, t.label, fetch_command(teacher))
        if os.path.isdir(teacher):
            return teacher
        return _cached(teacher, teacher, f"huggingface-cli download {teacher}")

    def _load(self, teacher: str, dtype: torch.dtype, rival=None) -> TextToVideoPipeline:
        import diffusers
        import transformers

        # Loading takes well under a second for the embedded teacher: no progress bars.
        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()

        if teacher == "embedded":
            return TextToVideoPipeline.from_pretrained(self._pipeline_folder(teacher), dtype=dtype)
        t = TEACHERS.get(teacher)
        if t is None:  # a folder or hub id of a ModelScope-layout pipeline
            return TextToVideoPipeline.from_pretrained(teacher, dtype=dtype)
        base = _cached(t.repo, t.label, fetch_command(teacher))
        if t.motion_adapter is None:
            variant = hub.weights_variant(os.path.join(base, "unet"))
            return TextToVideoPipeline.from_pretrained(base, dtype=dtype, variant=variant)
        motion = _cached(t.motion_adapter, f"{t.label}'s motion adapter", fetch_command(teacher))
        if rival is not None:  # its own motion module (and LoRA) over the same SD1.5 base
            c = competitors.COMPETITORS[rival.competitor]
            folder = _cached(c.repo, c.label, f"{fetch_command(teacher)} --competitors")
            return competitors.assemble(rival, base, motion, folder, dtype)
        return assemble_animatediff(base, motion, dtype)

    def use_student(self, pipe, teacher: str, name: str | None, folder: str | None = None) -> str:
        """Switch a pipeline to a student (loaded on first use, from `folder` or the
        catalogue's), merged into the base weights, or to the clean teacher (None). Returns
        the sampler to run it with. Callers hold the device's lock: a switch rewrites weights."""
        if name is None:
            pipe.set_adapter(None, merge=True)  # the clean teacher, switched as serving does
            return "ddim"
        if name not in pipe.adapters:
            pipe.load_adapter(folder or self.student_folder(teacher, name), name)
        pipe.set_adapter(name, merge=True)
        return "consistency"

    def missing(self, teacher: str) -> list[str]:
        """What of `teacher` and its students is not on this machine (nothing is loaded)."""
        t = TEACHERS[teacher]
        gone = []
        if t.repos:
            for repo in t.repos:
                try:
                    _snapshot(repo, offline=True)
                except Exception:  # not in the hub cache
                    gone.append(repo)
        elif not (self.teacher_folder / "model_index.json").exists():
            gone.append("teacher")
        for name in student_names(teacher):
            try:
                self.student_folder(teacher, name)
            except CheckpointMissing:
                gone.append(name)
        return gone

    def load_evaluator(self) -> ToyEvaluator:
        if not (self.evaluator_folder / "config.json").exists():
            raise CheckpointMissing(
                f"the evaluator is missing at {self.evaluator_folder}; rebuild it with "
                "`python -m mcm_demo train evaluator`"
            )
        return ToyEvaluator.from_pretrained(str(self.evaluator_folder)).eval()
