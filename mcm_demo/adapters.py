"""LoRA students on a teacher UNet with plain `peft`: attach, save, load, switch.

`UNet3DConditionModel` has no PEFT mixin in diffusers, so adapters are injected with
`peft.inject_adapter_in_model` and switched on every LoRA layer directly. Several named
adapters live on one base UNet at once; `use_adapter(unet, None)` gives the teacher back.

Serving merges the active student into the base weights (`use_adapter(..., merge=True)`): an
unmerged LoRA runs beside every base layer and made a student step cost 1.5–2× a teacher's
batch-1 step (docs/performance.md). Every switch first puts the base weights back from a
copy taken before the first merge, so the teacher and the trainers never see a merged
adapter and switching A → B → A gives A's weights back bit for bit (peft's `unmerge`
subtracts B·A again and leaves rounding behind).

Folders use the published MCM layout (`yhzhai/mcm/<variant>/`): `adapter_config.json` +
`adapter_model.safetensors` with `base_model.model.`-prefixed keys, as
`PeftModel.save_pretrained` writes them.
"""

from __future__ import annotations

import json
import os
import warnings

import torch
from peft import (
    LoraConfig,
    get_peft_model_state_dict,
    inject_adapter_in_model,
    set_peft_model_state_dict,
)
from peft.tuners.tuners_utils import BaseTunerLayer
from safetensors.torch import load_file, save_file

# The public MCM code's target list. Its short names also match the temporal convs'
# Sequential containers (`temp_convs.0.conv1`), which the paper leaves untouched and peft
# cannot wrap, so names are resolved to the supported layers outside `temp_convs`.
PUBLISHED_TARGET_MODULES = (
    "to_q",
    "to_k",
    "to_v",
    "to_out.0",
    "proj_in",
    "proj_out",
    "ff.net.0.proj",
    "ff.net.2",
    "conv1",
    "conv2",
    "conv_shortcut",
    "downsamplers.0.conv",
    "upsamplers.0.conv",
    "time_emb_proj",
)
_SUPPORTED = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.Conv3d)
_PREFIX = "base_model.model."


def resolve_target_modules(
    model: torch.nn.Module, short_names=PUBLISHED_TARGET_MODULES
) -> list[str]:
    """Full names of the layers a published short-name list means on this model."""
    found = []
    for name, module in model.named_modules():
        parts = name.split(".")
        if (
            "temp_convs" in parts
            or "base_layer" in parts
            or any(p.startswith("lora_") for p in parts)
        ):
            continue  # a layer already wrapped by LoRA is named by its wrapper, not its base_layer
        if not isinstance(module, _SUPPORTED + (BaseTunerLayer,)):
            continue
        if any(name == s or name.endswith("." + s) for s in short_names):
            found.append(name)
    if not found:
        raise ValueError(
            f"none of {list(short_names)} names a LoRA-able layer of {type(model).__name__}"
        )
    return found


def lora_layers(model: torch.nn.Module) -> list[BaseTunerLayer]:
    """The model's LoRA layers, found once per attach: walking a UNet's modules was most of
    the cost of a switch (docs/performance.md)."""
    found = model.__dict__.get("_lora_layers")
    if found is None:
        found = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
        model.__dict__["_lora_layers"] = found
    return found


def adapter_names(model: torch.nn.Module) -> list[str]:
    return sorted({n for layer in lora_layers(model) for n in layer.lora_A.keys()})


def attach_lora(
    model: torch.nn.Module,
    name: str,
    rank: int = 64,
    alpha: int | None = None,
    target_modules=PUBLISHED_TARGET_MODULES,
    init: bool = True,
) -> LoraConfig:
    """Inject a new LoRA adapter (B = 0: the student starts as the teacher) and make it active."""
    if name in adapter_names(model):
        raise ValueError(f"adapter {name!r} is already attached")
    restore_base_weights(model)  # a new adapter is injected around clean base layers
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha or rank,
        target_modules=resolve_target_modules(model, target_modules),
        lora_dropout=0.0,
        bias="none",
        init_lora_weights=init,
    )
    with warnings.catch_warnings():  # "multiple adapters in the model": that is the point
        warnings.filterwarnings("ignore", message=".*multiple adapters.*")
        inject_adapter_in_model(config, model, adapter_name=name)
    model.__dict__.pop("_lora_layers", None)  # new layers may have been wrapped
    for layer in lora_layers(model):
        # peft builds the new modules in training mode; a model in eval mode stays wholly so
        # (the pipeline checks only the top module's flag: walking 4,000 modules a call costs)
        layer.train(model.training)
        if not getattr(layer, "_takes_input_keyword", False):
            layer.register_forward_pre_hook(_input_keyword_to_positional, with_kwargs=True)
            layer._takes_input_keyword = True
    use_adapter(model, name)
    return config


def _input_keyword_to_positional(module, args, kwargs):
    """AnimateDiff's motion modules call `self.proj_in(input=x)`; peft's LoRA layers take x
    positionally, so the keyword is moved into place before they run."""
    if not args and "input" in kwargs:
        kwargs = dict(kwargs)
        return (kwargs.pop("input"),), kwargs
    return None


def use_adapter(model: torch.nn.Module, name: str | list[str] | None, merge: bool = False) -> None:
    """Activate one named adapter (or several, summed: a student plus a motion LoRA) on every
    LoRA layer; None runs the bare teacher. With `merge` (serving), the adapter is folded into
    the base weights and nothing is left to train; without it, it runs beside them."""
    names = None if name is None else ([name] if isinstance(name, str) else list(name))
    if getattr(model, "_merged_state", "unknown") == names and (merge or names is None):
        return  # serving the same student (or the teacher) again: nothing to rewrite
    layers = lora_layers(model)
    restore_base_weights(model)
    served = model.__dict__.setdefault("_served", set())  # merged before: known to be attached
    if names is not None and tuple(names) not in served:
        missing = [n for n in names if n not in adapter_names(model)]
        if missing:
            raise KeyError(f"no adapter {missing[0]!r}; attached: {adapter_names(model)}")
    if merge:
        for layer in layers:
            _serve(layer, names)
            if names is not None:
                _merge_into_base(layer, names)
        model._merged_state = names
        if names is not None:
            served.add(tuple(names))
        return
    if names is None:
        for layer in layers:
            layer.enable_adapters(False)
        model._merged_state = None
        return
    forget_merges(model)  # an adapter that runs unmerged may be trained: cached merges go stale
    for layer in layers:
        layer.enable_adapters(True)
        layer.set_adapter(names if len(names) > 1 else names[0])


def _serve(layer: BaseTunerLayer, names: list[str] | None) -> None:
    """Set the two flags peft's forward reads. Its `enable_adapters` and `set_adapter` also
    flip `requires_grad` on every attached adapter's weights, which was most of a switch's
    cost with seven students attached; serving trains nothing. Both are plain attributes, so
    they are written straight into the layer's `__dict__`, past `nn.Module.__setattr__`'s
    checks (a tenth of a switch's time over 310 layers)."""
    state = vars(layer)
    state["_disable_adapters"] = names is None
    if names is not None:
        state["_active_adapter"] = names if len(names) > 1 else names[0]


def _merge_into_base(layer: BaseTunerLayer, names: list[str]) -> None:
    """Fold `names` (those of them this layer holds) into its base weights. The first time,
    peft merges and the result is kept; after that a switch only points the layer's weights
    at the kept tensors (on the CPU) or copies them in."""
    cache = vars(layer).get("merged_weights")
    if cache is None:
        params = dict(layer.get_base_layer().named_parameters(recurse=False))
        on_cpu = next(iter(params.values())).device.type == "cpu"
        # On the CPU the clean tensors themselves are kept and swapped in by reference; an
        # accelerator keeps its copy off itself, since a real teacher's second copy there
        # would double its UNet's memory.
        layer.clean_weights = [
            (p, p.detach() if on_cpu else p.detach().to("cpu", copy=True)) for p in params.values()
        ]
        cache = layer.merged_weights = {}
    key = tuple(names)
    if key in cache:
        held, weights = cache[key]
        _put(weights)
        layer.merged_adapters.extend(held)  # peft's own record of what is merged
        return
    held = [n for n in names if n in layer.lora_A]
    if not held:
        cache[key] = (held, [])
        return
    first_param, first_clean = layer.clean_weights[0]
    by_reference = first_clean.device == first_param.device  # the CPU case above
    if by_reference:  # peft merges in place: into a fresh tensor, never into the clean one
        _put([(p, clean.clone()) for p, clean in layer.clean_weights])
    layer.merge(adapter_names=held)
    if by_reference:  # a small CPU model; an accelerator merges fast anyway
        cache[key] = (held, [(p, p.detach()) for p, _ in layer.clean_weights])


def _put(weights: list[tuple[torch.nn.Parameter, torch.Tensor]]) -> None:
    """Give each parameter its tensor: by reference where both have the same device and dtype
    (no copy; nothing writes into these tensors afterwards, since the base weights are frozen
    and a merge starts from a fresh clone), by copy otherwise."""
    for param, tensor in weights:
        if tensor.device == param.device and tensor.dtype == param.dtype:
            param.data = tensor
        else:
            param.data.copy_(tensor)  # `.data`: outside autograd, as the weights are frozen


def restore_base_weights(model: torch.nn.Module) -> None:
    """Undo every merge by putting the clean base weights back: exact, and cheaper than
    peft's `unmerge`, which recomputes each B·A."""
    model._merged_state = "restored"  # neither the teacher's nor a student's merged state
    for layer in lora_layers(model):
        if layer.merged_adapters:
            _put(layer.clean_weights)
            layer.merged_adapters.clear()  # peft's own record of what is merged


def forget_merges(model: torch.nn.Module, name: str | None = None) -> None:
    """Drop the kept merged weights (of those that involve `name`, or all)."""
    model.__dict__.pop("_served", None)
    for layer in lora_layers(model):
        cache = vars(layer).get("merged_weights", {})
        for key in [k for k in cache if name is None or name in k]:
            del cache[key]


def merged_adapters(model: torch.nn.Module) -> list[str]:
    """The adapters folded into the base weights now (empty when none is)."""
    return sorted({n for layer in lora_layers(model) for n in layer.merged_adapters})


def remove_adapter(model: torch.nn.Module, name: str) -> None:
    """Detach an adapter from every layer that holds it (the others keep theirs)."""
    restore_base_weights(model)
    forget_merges(model, name)
    for layer in lora_layers(model):
        if name in layer.lora_A:
            layer.delete_adapter(name)


def lora_parameters(model: torch.nn.Module, name: str) -> list[torch.nn.Parameter]:
    return [
        p
        for n, p in model.named_parameters()
        if f".{name}." in n and ("lora_A" in n or "lora_B" in n)
    ]


def save_adapter(
    model: torch.nn.Module, name: str, folder: str, config: LoraConfig | None = None
) -> None:
    """Write `adapter_config.json` + `adapter_model.safetensors` in `PeftModel`'s layout."""
    os.makedirs(folder, exist_ok=True)
    state = get_peft_model_state_dict(model, adapter_name=name)
    save_file(
        {_PREFIX + k: v.detach().contiguous().cpu() for k, v in state.items()},
        os.path.join(folder, "adapter_model.safetensors"),
    )
    layer = next(m for m in lora_layers(model) if name in m.lora_A)
    rank = layer.r[name]
    alpha = round(layer.scaling[name] * rank)
    cfg = config.to_dict() if config is not None else {}
    # the layers that really hold this adapter (another adapter may sit on more of them)
    holders = [
        n for n, m in model.named_modules() if isinstance(m, BaseTunerLayer) and name in m.lora_A
    ]
    cfg.update(
        {
            "peft_type": "LORA",
            "r": rank,
            "lora_alpha": alpha,
            "bias": "none",
            "lora_dropout": 0.0,
            "target_modules": sorted(set(cfg.get("target_modules") or holders)),
        }
    )
    with open(os.path.join(folder, "adapter_config.json"), "w") as f:
        json.dump(
            {
                k: (sorted(v) if isinstance(v, set) else v)
                for k, v in cfg.items()
                if isinstance(v, (str, int, float, bool, list, set, type(None)))
            },
            f,
            indent=2,
        )


def load_adapter(model: torch.nn.Module, folder: str, name: str) -> None:
    """Attach the adapter saved in `folder` under `name` (the published or our own layout)."""
    config_path = os.path.join(folder, "adapter_config.json")
    weights_path = os.path.join(folder, "adapter_model.safetensors")
    for path in (config_path, weights_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} is missing: an adapter folder holds adapter_config.json "
                "and adapter_model.safetensors"
            )
    with open(config_path) as f:
        cfg = json.load(f)
    targets = cfg.get("target_modules") or PUBLISHED_TARGET_MODULES
    targets = [targets] if isinstance(targets, str) else targets
    attach_lora(
        model,
        name,
        rank=int(cfg["r"]),
        alpha=int(cfg.get("lora_alpha", cfg["r"])),
        target_modules=targets,
    )
    load_adapter_weights(model, folder, name)


def load_adapter_weights(model: torch.nn.Module, folder: str, name: str) -> None:
    """Set the weights of the attached adapter `name` from `folder` (prefixed keys or not)."""
    restore_base_weights(model)
    forget_merges(model, name)
    weights = load_file(os.path.join(folder, "adapter_model.safetensors"))
    state = {k.removeprefix(_PREFIX): v for k, v in weights.items()}
    result = set_peft_model_state_dict(model, state, adapter_name=name)
    missing = [k for k in result.missing_keys if f".{name}." in k and "lora_" in k]
    if result.unexpected_keys or missing:
        raise ValueError(
            f"adapter in {folder} does not fit this UNet: "
            f"{len(result.unexpected_keys)} unexpected, {len(missing)} missing LoRA weights"
        )


# -- your own students: adapter folders named on the command line ----------------------
def is_adapter_folder(folder: str) -> bool:
    return all(
        os.path.isfile(os.path.join(folder, f))
        for f in ("adapter_config.json", "adapter_model.safetensors")
    )


def adapter_teacher(folder: str) -> str:
    """The teacher an adapter folder was distilled on (`distill_config.json`; a folder without
    one, as the published adapters, is taken to be for the embedded teacher)."""
    path = os.path.join(folder, "distill_config.json")
    if not os.path.isfile(path):
        return "embedded"
    with open(path) as f:
        return json.load(f).get("teacher", "embedded")


def find_adapter_folders(folder: str) -> dict[str, tuple[str, str]]:
    """Each adapter folder in `folder` (or `folder` itself) by its name → (folder, teacher);
    FileNotFoundError with what an adapter folder is when there is none."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"--adapters {folder}: no such folder")
    folders = (
        [folder]
        if is_adapter_folder(folder)
        else [
            os.path.join(folder, n)
            for n in sorted(os.listdir(folder))
            if is_adapter_folder(os.path.join(folder, n))
        ]
    )
    if not folders:
        raise FileNotFoundError(
            f"--adapters {folder}: no adapter folder in it (one holds adapter_config.json and "
            "adapter_model.safetensors, as `distill --out DIR` or a run's <run-dir>/adapter)"
        )
    found = {}
    for path in folders:
        name = os.path.basename(os.path.normpath(path))
        if name == "adapter":  # a run's own folder: name it after the run
            name = os.path.basename(os.path.dirname(os.path.normpath(path)))
        found[name] = (path, adapter_teacher(path))
    return found
