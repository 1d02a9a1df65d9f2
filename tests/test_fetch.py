"""`fetch` plans only the files that load, from a faked hub listing (nothing reaches a hub):
one weight format per folder (fp16 safetensors where the repo has it), no original
checkpoints at a pipeline repo's root, the adapters without their `unet_lora/` copies; and the
fp16 files it keeps load."""

import types

import huggingface_hub
import pytest

from mcm_demo import catalog, downloads, hub
from mcm_demo.app import cli

GB, MB, KB = 10**9, 10**6, 10**3


def _component(folder, stem, size):
    """A component folder as the hub repos hold it: four copies of each weight."""
    return {
        f"{folder}/config.json": 1 * KB,
        f"{folder}/{stem}.bin": size,
        f"{folder}/{stem}.fp16.bin": size // 2,
        f"{folder}/{stem}.safetensors": size,
        f"{folder}/{stem}.fp16.safetensors": size // 2,
    }


def _pipeline_repo(unet_size, with_fp16=True):
    files = {
        "README.md": 5 * KB,
        ".gitattributes": 2 * KB,
        "model_index.json": 1 * KB,
        # ModelScope's original checkpoints sit at the root; nothing of ours loads them
        "VQGAN_autoencoder.pth": int(5.2 * GB),
        "open_clip_pytorch_model.bin": int(3.9 * GB),
        "text2video_pytorch_model.pth": int(5.6 * GB),
        "tokenizer/vocab.json": 1 * MB,
        "tokenizer/merges.txt": 500 * KB,
        "tokenizer/tokenizer_config.json": 1 * KB,
        "scheduler/scheduler_config.json": 1 * KB,
        **_component("unet", "diffusion_pytorch_model", unet_size),
        **_component("vae", "diffusion_pytorch_model", 335 * MB),
        **_component("text_encoder", "model", int(1.36 * GB)),
        "text_encoder/pytorch_model.bin": int(1.36 * GB),
    }
    if not with_fp16:
        files = {p: s for p, s in files.items() if ".fp16." not in p}
    return files


def _adapters():
    files = {}
    for prefix, variants in (
        ("modelscopet2v", catalog.VARIANTS),
        ("animatediff", ("webvid", "laion")),
    ):
        for v in variants:
            files[f"{prefix}-{v}/adapter_config.json"] = 1 * KB
            files[f"{prefix}-{v}/adapter_model.safetensors"] = 384 * MB
            files[f"{prefix}-{v}/unet_lora/pytorch_lora_weights.safetensors"] = 384 * MB
    return files


LISTINGS = {
    "ali-vilab/text-to-video-ms-1.7b": _pipeline_repo(int(5.65 * GB)),
    "emilianJR/epiCRealism": _pipeline_repo(int(3.44 * GB), with_fp16=False),
    "SG161222/Realistic_Vision_V6.0_B1_noVAE": {
        **_pipeline_repo(int(3.44 * GB), with_fp16=False),
        # single-file checkpoints at the root, for other tools
        "Realistic_Vision_V6.0_NV_B1.safetensors": int(4.27 * GB),
        "Realistic_Vision_V6.0_NV_B1_fp16.safetensors": int(2.13 * GB),
    },
    "guoyww/animatediff-motion-adapter-v1-5-2": {
        "README.md": 1 * KB,
        "config.json": 1 * KB,
        "diffusion_pytorch_model.safetensors": int(1.82 * GB),
        "diffusion_pytorch_model.fp16.safetensors": 908 * MB,
    },
    "madebyollin/taesd": {
        "config.json": 1 * KB,
        "diffusion_pytorch_model.safetensors": int(9.8 * MB),
        "diffusion_pytorch_model.bin": int(9.8 * MB),
        "taesd_decoder.pth": int(4.9 * MB),
        "images/original.jpg": 100 * KB,
    },
    "yhzhai/mcm": _adapters(),
    # the paper's competitors, as their repos list them (sizes as the hub shows them)
    "wangfuyun/AnimateLCM": {
        ".gitattributes": 2 * KB,
        "README.md": 2 * KB,
        "config.json": 376,
        "AnimateLCM_sd15_t2v.ckpt": int(1.81 * GB),  # the original motion module, pickled
        "AnimateLCM_sd15_t2v_lora.safetensors": 135 * MB,
        "diffusion_pytorch_model.safetensors": int(1.82 * GB),
        "diffusion_pytorch_model.fp16.safetensors": 908 * MB,
    },
    "ByteDance/AnimateDiff-Lightning": {
        ".gitattributes": 2 * KB,
        "README.md": 7 * KB,
        "LICENSE.md": 14 * KB,
        "comfyui/animatediff_lightning_workflow.json": 20 * KB,
        "animatediff_lightning_report.pdf": int(9.19 * MB),
        "animatediff_lightning_samples_t2v.mp4": int(1.4 * MB),
        **{f"animatediff_lightning_{n}step_comfyui.safetensors": 909 * MB for n in (1, 2, 4, 8)},
        **{f"animatediff_lightning_{n}step_diffusers.safetensors": 908 * MB for n in (1, 2, 4, 8)},
    },
}


@pytest.fixture
def fake_hub(monkeypatch):
    """huggingface_hub's listing, cache lookup and download, faked: the downloads are recorded."""
    calls = {"downloads": [], "cached": set()}

    def list_repo_tree(repo, path_in_repo=None, recursive=False, **kwargs):
        assert recursive
        for path, size in LISTINGS[repo].items():
            yield types.SimpleNamespace(path=path, size=size)

    def try_to_load_from_cache(repo, filename, **kwargs):
        return f"/cache/{repo}/{filename}" if (repo, filename) in calls["cached"] else None

    def snapshot_download(repo, allow_patterns=None, **kwargs):
        calls["downloads"].append((repo, sorted(allow_patterns)))
        return f"/cache/{repo}"

    monkeypatch.setattr(huggingface_hub, "list_repo_tree", list_repo_tree)
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", try_to_load_from_cache)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return calls


def _listed(out: str) -> list[str]:
    return [line.split()[-1] for line in out.splitlines() if line.startswith("  ")]


def test_modelscope_dry_run_lists_only_what_loads(fake_hub, capsys):
    assert cli.main(["fetch", "modelscope", "--all", "--dry-run"]) == 0
    out = capsys.readouterr().out
    listed = _listed(out)
    repo = "ali-vilab/text-to-video-ms-1.7b"
    weights = [p for p in listed if p.endswith((".safetensors", ".bin", ".pth"))]
    assert sorted(p for p in weights if p.startswith(repo)) == [
        f"{repo}/text_encoder/model.fp16.safetensors",
        f"{repo}/unet/diffusion_pytorch_model.fp16.safetensors",
        f"{repo}/vae/diffusion_pytorch_model.fp16.safetensors",
    ]
    assert f"{repo}/model_index.json" in listed and f"{repo}/tokenizer/merges.txt" in listed
    assert not any(p.endswith((".bin", ".pth", ".md")) or "unet_lora" in p for p in listed)
    adapters = [p for p in listed if p.startswith("yhzhai/mcm/")]
    assert len(adapters) == 2 * len(catalog.VARIANTS) and not any(
        "animatediff" in p for p in adapters
    )
    # 2.825 + 0.1675 + 0.68 GB of fp16 weights, 5 × 384 MB of adapters, TAESD, small files
    total = sum(s for p, s in LISTINGS[repo].items() if f"{repo}/{p}" in listed)
    assert 3.6 * GB < total < 3.7 * GB
    assert f"{len(listed)} files, 5.6 GB in all" in out and fake_hub["downloads"] == []


@pytest.mark.parametrize(
    "teacher, base",
    [
        ("animatediff", "SG161222/Realistic_Vision_V6.0_B1_noVAE"),
        ("animatediff-epicrealism", "emilianJR/epiCRealism"),
    ],
)
def test_animatediff_takes_full_precision_where_the_repo_has_no_fp16(
    fake_hub, capsys, teacher, base
):
    assert cli.main(["fetch", teacher, "--variant", "laion", "--dry-run"]) == 0
    listed = _listed(capsys.readouterr().out)
    motion = "guoyww/animatediff-motion-adapter-v1-5-2"
    assert not any(p.startswith(f"{base}/Realistic") for p in listed)  # root checkpoints
    assert f"{base}/unet/diffusion_pytorch_model.safetensors" in listed
    assert f"{motion}/diffusion_pytorch_model.fp16.safetensors" in listed
    assert f"{motion}/diffusion_pytorch_model.safetensors" not in listed
    assert [p for p in listed if p.startswith("yhzhai")] == [
        "yhzhai/mcm/animatediff-laion/adapter_config.json",
        "yhzhai/mcm/animatediff-laion/adapter_model.safetensors",
    ]
    assert "madebyollin/taesd/diffusion_pytorch_model.safetensors" in listed
    assert not any("taesd_decoder" in p or p.endswith(".jpg") for p in listed)


def test_competitors_dry_run_lists_only_what_loads(fake_hub, capsys):
    """`fetch animatediff --all --competitors --dry-run`: AnimateLCM's motion adapter in one
    format and its LoRA (not the pickled original), Lightning's four diffusers checkpoints (not
    the ComfyUI copies, the report or the samples), besides the teacher and its adapters."""
    assert cli.main(["fetch", "animatediff", "--all", "--competitors", "--dry-run"]) == 0
    out = capsys.readouterr().out
    listed = _listed(out)
    rivals = [p for p in listed if p.startswith(("wangfuyun/", "ByteDance/"))]
    assert rivals == [
        "wangfuyun/AnimateLCM/AnimateLCM_sd15_t2v_lora.safetensors",
        "wangfuyun/AnimateLCM/config.json",
        "wangfuyun/AnimateLCM/diffusion_pytorch_model.fp16.safetensors",
        *(
            f"ByteDance/AnimateDiff-Lightning/animatediff_lightning_{n}step_diffusers.safetensors"
            for n in (1, 2, 4, 8)
        ),
    ]
    assert "yhzhai/mcm/animatediff-webvid/adapter_model.safetensors" in listed
    assert len(listed) == 26 and "26 files, 11.5 GB in all" in out  # 4.7 GB of competitors
    assert fake_hub["downloads"] == []
    assert cli.main(["fetch", "animatediff", "--competitors"]) == 0  # downloads those files
    downloaded = dict(fake_hub["downloads"])
    assert downloaded["ByteDance/AnimateDiff-Lightning"] == [p.split("/", 2)[2] for p in rivals[3:]]
    with pytest.raises(ValueError, match="ModelScopeT2V 1.7B has no public competitors"):
        downloads.fetch("modelscope", rivals=True, dry_run=True, log=lambda line: None)


def test_a_named_checkpoint_the_repo_lacks_is_said_before_downloading(fake_hub, monkeypatch):
    repo = "ByteDance/AnimateDiff-Lightning"
    listing = {p: s for p, s in LISTINGS[repo].items() if "8step_diffusers" not in p}
    monkeypatch.setitem(LISTINGS, repo, listing)
    with pytest.raises(catalog.CheckpointMissing, match="has no animatediff_lightning_8step"):
        downloads.fetch("animatediff", rivals=True, log=lambda line: None)
    assert fake_hub["downloads"] == []


def test_fetch_says_the_size_first_and_downloads_only_what_is_planned(fake_hub):
    lines = []
    fake_hub["cached"].add(("yhzhai/mcm", "modelscopet2v-webvid/adapter_model.safetensors"))

    def log(line):
        lines.append((line, len(fake_hub["downloads"])))

    files = downloads.fetch("modelscope", ["webvid"], log=log)
    summary = next(line for line, downloads in lines if "in all" in line)
    assert "384.0 MB already in the cache" in summary
    assert all(downloads == 0 for line, downloads in lines if "in all" in line)  # said first
    downloaded = dict(fake_hub["downloads"])
    assert downloaded["yhzhai/mcm"] == [
        "modelscopet2v-webvid/adapter_config.json",
        "modelscopet2v-webvid/adapter_model.safetensors",
    ]
    assert sorted(f.path for f in files if f.repo == "madebyollin/taesd") == [
        "config.json",
        "diffusion_pytorch_model.safetensors",
    ]


def test_a_listing_error_names_the_retry(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("offline")

    monkeypatch.setattr(huggingface_hub, "list_repo_tree", offline)
    with pytest.raises(catalog.CheckpointMissing, match="run the command again"):
        downloads.fetch("modelscope", dry_run=True, log=lambda line: None)


def test_sharded_and_variant_weights_choose_one_set():
    listing = {
        "unet/diffusion_pytorch_model-00001-of-00002.safetensors": 5,
        "unet/diffusion_pytorch_model-00002-of-00002.safetensors": 5,
        "unet/diffusion_pytorch_model.safetensors.index.json": 1,
        "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors": 3,
        "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors": 3,
        "unet/diffusion_pytorch_model.safetensors.index.fp16.json": 1,
        "unet/diffusion_pytorch_model.bin.index.json": 1,
        "unet/config.json": 1,
    }
    chosen = hub.select_files(listing, hub.RepoPart("r", ("unet",)))
    assert sorted(chosen) == [
        "unet/config.json",
        "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
        "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
        "unet/diffusion_pytorch_model.safetensors.index.fp16.json",
    ]


def test_the_fp16_files_fetch_keeps_are_what_the_catalogue_loads(
    tiny_pipeline, tmp_path, monkeypatch
):
    """A pipeline folder holding only the fp16 variant's files (what `fetch` downloads from
    ModelScope's repo) loads through the catalogue: `variant="fp16"` is passed where they are."""
    import torch

    tiny_pipeline.save_pretrained(tmp_path, variant="fp16")  # the name only: float32 inside
    assert not list(tmp_path.glob("unet/diffusion_pytorch_model.safetensors"))
    assert hub.weights_variant(str(tmp_path / "unet")) == "fp16"
    monkeypatch.setattr(catalog, "_snapshot", lambda repo, *a, **k: str(tmp_path))
    pipe = catalog.Catalog().load_pipeline("modelscope", device="cpu")
    assert pipe.unet.dtype == torch.float32
    loaded, original = pipe.unet.state_dict(), tiny_pipeline.unet.state_dict()
    assert all(torch.equal(loaded[k], original[k]) for k in original)


def test_a_repo_without_a_component_fails_before_downloading(fake_hub, monkeypatch):
    """A base laid out otherwise (no vae/ folder) is named at planning time, not at load time."""
    listing = {p: s for p, s in LISTINGS["emilianJR/epiCRealism"].items() if "vae/" not in p}
    monkeypatch.setitem(LISTINGS, "emilianJR/epiCRealism", listing)
    with pytest.raises(catalog.CheckpointMissing, match="nothing in vae/"):
        downloads.fetch("animatediff-epicrealism", log=lambda line: None)
    assert fake_hub["downloads"] == []
