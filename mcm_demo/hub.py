"""Downloads from the Hugging Face hub: which files of a repo load, their sizes, and the download.

Hub repos hold each weight several times (ModelScope's UNet as .bin, .fp16.bin, .safetensors and
.fp16.safetensors, plus the original checkpoints at the root; the MCM adapters also as a
kohya-style `unet_lora/` copy), so a whole snapshot is several times what runs. A `RepoPart`
names the folders a loader reads, and `select_files` keeps one weight format per folder:
safetensors only (nothing is unpickled), the fp16 variant where the folder has one (what a GPU
runs; on a CPU it is upcast on load), the rest of the folder's configs and vocabularies.

The repos are listed with `huggingface_hub.list_repo_tree` and downloaded with
`snapshot_download(allow_patterns=<the chosen files>)`, which skips what the cache holds and
resumes a partial file. Nothing here knows checkpoint names: the catalogue says what to fetch.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt", ".msgpack", ".h5", ".onnx")
# diffusers' and transformers' weight files in a component folder (sharded ones carry -0000n-of-)
WEIGHT_STEMS = ("diffusion_pytorch_model", "model", "adapter_model")
VARIANT = "fp16"


@dataclasses.dataclass(frozen=True)
class RepoPart:
    """What a loader reads of a hub repo: files directly in `folders` ("" is the root), one
    weight format each; `files` names single files to add (a pipeline's model_index.json)."""

    repo: str
    folders: tuple[str, ...] = ("",)
    files: tuple[str, ...] = ()
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.repo


@dataclasses.dataclass(frozen=True)
class HubFile:
    repo: str
    path: str
    size: int
    cached: bool = False


def _is_weight(name: str) -> bool:
    return name.endswith(WEIGHT_SUFFIXES) or ".safetensors.index" in name or ".bin.index" in name


def _is_variant(name: str) -> bool:
    return f".{VARIANT}." in name or f".{VARIANT}-" in name or name.endswith(f".{VARIANT}.json")


def _loadable_weight(name: str) -> bool:
    """A safetensors weight (or its shard index) under the names diffusers/transformers load."""
    stem_ok = any(
        name.startswith(stem + ".") or name.startswith(stem + "-") for stem in WEIGHT_STEMS
    )
    return stem_ok and (name.endswith(".safetensors") or ".safetensors.index" in name)


def select_files(listing: dict[str, int], part: RepoPart) -> dict[str, int]:
    """The files of `listing` (path → bytes) that `part`'s loader reads."""
    chosen = {p: listing[p] for p in part.files if p in listing}
    for folder in part.folders:
        here = {p: s for p, s in listing.items() if posixpath.dirname(p) == folder}
        weights = {p: s for p, s in here.items() if _loadable_weight(posixpath.basename(p))}
        variant = {p: s for p, s in weights.items() if _is_variant(posixpath.basename(p))}
        chosen.update(variant or {p: s for p, s in weights.items() if p not in variant})
        chosen.update(
            {
                p: s
                for p, s in here.items()
                if not _is_weight(posixpath.basename(p))
                and not posixpath.basename(p).startswith(".")  # .gitattributes
                and not p.lower().endswith(".md")
                and (folder or p.endswith(".json"))  # at the root, configs only
            }
        )
    return dict(sorted(chosen.items()))


def weights_variant(folder: str) -> str | None:
    """`VARIANT` when a downloaded component folder holds the fp16 files, else None: what to
    pass as `variant=` to `from_pretrained`."""
    if not os.path.isdir(folder):
        return None
    return (
        VARIANT if any(_loadable_weight(n) and _is_variant(n) for n in os.listdir(folder)) else None
    )


def list_repo(repo: str) -> dict[str, int]:
    """Every file of a hub repo and its size in bytes (one listing call)."""
    import huggingface_hub

    return {
        entry.path: int(entry.size or 0)
        for entry in huggingface_hub.list_repo_tree(repo, recursive=True)
        if getattr(entry, "size", None) is not None  # folders have none
    }


def _is_cached(repo: str, path: str) -> bool:
    import huggingface_hub

    return isinstance(huggingface_hub.try_to_load_from_cache(repo, path), str)


def plan(parts: list[RepoPart]) -> list[HubFile]:
    """The files to fetch for `parts`, with their sizes and whether the cache holds them."""
    files = []
    for part in parts:
        listing = list_repo(part.repo)
        chosen = select_files(listing, part)
        for path in part.files:  # a named weight that is not there: the repo changed
            if path not in listing and _is_weight(posixpath.basename(path)):
                raise FileNotFoundError(f"{part.repo} has no {path}, which {part.name} loads")
        for folder in part.folders:  # a repo laid out otherwise fails here, not at load time
            if not any(posixpath.dirname(p) == folder for p in chosen):
                where = f"{folder}/" if folder else "its root"
                raise FileNotFoundError(
                    f"{part.repo} has nothing in {where}, which {part.name} loads"
                )
        files += [HubFile(part.repo, p, s, _is_cached(part.repo, p)) for p, s in chosen.items()]
    return files


def human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def describe(files: list[HubFile], list_files: bool = False) -> list[str]:
    """Lines for the user: each file (with `list_files`) and the totals."""
    lines = []
    if list_files:
        for f in files:
            mark = " (cached)" if f.cached else ""
            lines.append(f"  {human_size(f.size):>9}  {f.repo}/{f.path}{mark}")
    total = sum(f.size for f in files)
    todo = sum(f.size for f in files if not f.cached)
    lines.append(
        f"{len(files)} files, {human_size(total)} in all; "
        f"{human_size(todo)} to download ({human_size(total - todo)} already in the cache)"
    )
    return lines


def download(files: list[HubFile], progress=None, log=print) -> None:
    """Fetch `files` into the hub cache, one snapshot call per repo (cached files are skipped,
    a partial one is resumed)."""
    from huggingface_hub import snapshot_download

    by_repo: dict[str, list[str]] = {}
    for f in files:
        by_repo.setdefault(f.repo, []).append(f.path)
    for repo, paths in by_repo.items():
        log(f"fetching {repo} ({len(paths)} files) …")
        kwargs = {"allow_patterns": paths}
        if progress is not None:
            kwargs["tqdm_class"] = progress
        snapshot_download(repo, **kwargs)
