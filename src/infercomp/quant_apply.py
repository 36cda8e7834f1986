"""Applying a quantization recipe (quantize.RECIPES) once at load, on whichever engine runs.

torchao's recipes quantize the modules in place (`quantize_`); infercomp's own formats
(fast.packed) replace the modules by PackedLinear. On the fast engine the fused weights are
quantized and the transformers modules re-pointed at views of them, so both engines (and the
quality figures, which run the transformers model) read one quantized copy.
"""

from __future__ import annotations

import os
import time

from infercomp.quality import QualityProbe
from infercomp.quantize import INDUCTOR_ENV, RECIPES

# ---------------------------------------------------------------------------------------------
# Applying a recipe


def _config(recipe: str):
    config = RECIPES[recipe].build()
    if hasattr(config, "set_inductor_config"):
        config.set_inductor_config = os.environ.get(INDUCTOR_ENV) == "1"
    return config


def quantize_weight(weight, recipe: str):
    """One (out, in) weight tensor quantized: by torchao, wrapped in a temporary nn.Linear, since
    `quantize_` works on modules (returns its tensor subclass, usable with F.linear); or packed
    in infercomp's own format (a fast.packed.PackedWeight)."""
    import torch

    if RECIPES[recipe].own:
        from infercomp.fast.packed import pack

        return pack(weight, RECIPES[recipe].bits)
    from torchao.quantization import quantize_

    lin = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False, device="meta")
    lin.weight = torch.nn.Parameter(weight.detach(), requires_grad=False)
    quantize_(lin, _config(recipe))
    return lin.weight.detach()


def quantize_layers(model, recipe: str) -> tuple[float, str | None]:
    """Quantize a transformers model's decoder-layer linears in place; returns (seconds, note)."""
    import torch

    start = time.perf_counter()
    note = None
    if RECIPES[recipe].own:
        from infercomp.fast.packed import pack_model

        note = _left_note(recipe, len(pack_model(model, RECIPES[recipe].bits)))
    else:
        from torchao.quantization import quantize_

        quantize_(model, _config(recipe), filter_fn=lambda m, fqn: isinstance(m, torch.nn.Linear) and ".layers." in fqn)
    _sync(model)
    return time.perf_counter() - start, note


def _left_note(recipe: str, left: int) -> str | None:
    if not left:
        return None
    return f"recipe {recipe!r}: {left} projections whose input size it cannot pack stay in the model dtype"


def _sync(model) -> None:
    import torch

    device = next(model.parameters()).device
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# fused weight -> (the layer's submodule holding its linears, those linears in fused row order)
FUSED = {
    "qkv": ("self_attn", ["q_proj", "k_proj", "v_proj"]),
    "o": ("self_attn", ["o_proj"]),
    "gate_up": ("mlp", ["gate_proj", "up_proj"]),
    "down": ("mlp", ["down_proj"]),
}


def quantize_lean(lean, recipe: str) -> tuple[float, str | None]:
    """Quantize the fast engine's fused weights (q|k|v, o, gate|up, down of every layer) in place
    and point the transformers modules at slices of them, so both engines (and the quality
    figures, which run the transformers model) use one quantized copy. Returns (seconds, note).

    A layout that cannot be sliced by rows (a packed tile layout may not be) leaves the
    transformers modules with their own quantized copy, said in the note."""
    if RECIPES[recipe].own:
        return _pack_lean(lean, recipe)
    start = time.perf_counter()
    sliced = True
    for lw, layer in zip(lean.layers, lean.hf.model.layers, strict=True):
        linears = {name: [getattr(getattr(layer, holder), m) for m in mods] for name, (holder, mods) in FUSED.items()}
        for name in FUSED:
            setattr(lw, name, quantize_weight(getattr(lw, name), recipe))
        try:
            for name, modules in linears.items():
                _point(getattr(lw, name), modules)
        except Exception:  # noqa: BLE001 - torchao raises assorted errors for unsupported slicing
            sliced = False
            for module in (m for modules in linears.values() for m in modules):
                if not _is_quantized(module.weight):
                    _set(module, quantize_weight(module.weight, recipe))
    _sync(lean.hf)
    note = (
        None
        if sliced
        else f"recipe {recipe!r}: its layout cannot be sliced by rows, so the reference modules "
        "hold their own quantized copy"
    )
    return time.perf_counter() - start, note


def _pack_lean(lean, recipe: str) -> tuple[float, str | None]:
    """quantize_lean for infercomp's own formats: the fused weights packed, the transformers
    modules replaced by PackedLinear views of their rows (and of the q|k|v bias)."""
    from infercomp.fast.packed import can_pack, pack, point_modules

    start = time.perf_counter()
    bits, left = RECIPES[recipe].bits, 0
    for lw, layer in zip(lean.layers, lean.hf.model.layers, strict=True):
        for name, (holder, modules) in FUSED.items():
            weight = getattr(lw, name)
            if not can_pack(weight.shape[1], bits):
                left += len(modules)
                continue
            setattr(lw, name, pack(weight, bits))
            bias = lw.qkv_bias if name == "qkv" else None
            point_modules(getattr(lw, name), getattr(layer, holder), modules, bias)
    _sync(lean.hf)
    return time.perf_counter() - start, _left_note(recipe, left)


def _point(fused, modules) -> None:
    """Set each module's weight to its rows of the fused (quantized) tensor: a view, no copy."""
    start = 0
    for module in modules:
        rows = module.out_features
        _set(module, fused[start : start + rows])
        start += rows


def _set(module, tensor) -> None:
    import torch

    module.weight = torch.nn.Parameter(tensor, requires_grad=False)


def _is_quantized(tensor) -> bool:
    import torch

    return type(tensor) not in (torch.Tensor, torch.nn.Parameter)


# ---------------------------------------------------------------------------------------------
# Once at load, on whichever engine runs


def apply(engine, leans=()) -> None:
    """Quantize the loaded engine's models as its settings say, once, recording the seconds and
    the perplexity of fixed texts before and after (`settings.quantization_quality`).

    `leans`: the fast engine's LeanModels (their fused weights are quantized and the transformers
    modules re-pointed at them); empty for the reference engine (its modules are quantized)."""
    settings = engine.settings
    if settings.quantization_recipe is None or settings.quantization_seconds is not None:
        return  # "none", nf4 (transformers quantizes while loading), or already done
    probe = QualityProbe(engine) if engine.config.quality else None
    seconds = 0.0
    recipe = settings.quantization_recipe
    done = [quantize_lean(lean, recipe) for lean in leans] or [
        quantize_layers(model, recipe) for model in (engine.main, engine.assistant) if model is not None
    ]
    for s, note in done:
        seconds += s
        if note and note not in settings.notes:
            settings.notes.append(note)
    from infercomp.quant_table import apply_tables

    layers = "every decoder layer's q, k, v, o, gate, up, down projections"
    settings.notes.append(f"quantized tensors: {layers} ({settings.quantization_recipe}); norms in the run's dtype")
    seconds += apply_tables(engine, leans)  # int4 / int8 kinds' int8 token table; notes which
    settings.quantization_seconds = round(seconds, 3)
    if probe is not None:
        settings.quantization_quality = probe.compare()
