"""Weight quantization: the kinds, which kernel ("recipe") runs each kind here, applied at load.

Kinds (config `quantization`):
  none   the run's dtype
  int8   8-bit weights, one scale per output row (torchao)
  int4   4-bit weights in groups along the input dimension (torchao)
  fp8    float8 e4m3 weights (torchao); on a GPU of compute capability >= 8.9 the activations
         are cast to fp8 per row too, so the matmul itself runs in fp8
  nf4    4-bit normal-float weights through bitsandbytes, reference engine only (quantized by
         transformers while loading stored weights)

A recipe is one torchao config: a kind has several (int4 has one per packing layout, each a
different kernel), the default one depends on the device. The environment variable
`INFERCOMP_QUANT_RECIPE` picks another one of the same kind: a benchmarking knob, recorded in
`settings.quantization_recipe` like the default.

The decoder layers' projections are quantized by torchao; the token table (embedding and the
often tied LM head) stays in the run's dtype, except for the 4-bit kinds, where it becomes an
int8 table (`quant_table`). Both engines run the same quantized tensors, so the same numbers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from infercomp.quality import QualityProbe

KINDS = ("none", "int8", "int4", "fp8", "nf4")
TORCHAO_KINDS = ("int8", "int4", "fp8")
RECIPE_ENV = "INFERCOMP_QUANT_RECIPE"
# torchao would otherwise switch on its recommended compiler settings (coordinate-descent tuning and
# more) for the whole process: the quantized and unquantized runs then compile differently and
# compiling takes longer. "1" lets it (a benchmarking knob, recorded in the notes).
INDUCTOR_ENV = "INFERCOMP_QUANT_INDUCTOR"
QUANT_HINT = "pip install 'infercomp[quant]'"


class QuantizationError(RuntimeError):
    """A quantization kind cannot run here; the message is one line saying why."""


@dataclass(frozen=True)
class Recipe:
    name: str
    kind: str
    description: str  # the torchao config it builds, as recorded in settings
    build: Callable[[], object]  # () -> a torchao config for `quantize_`
    cuda_only: bool = False


def _cfg(name: str, **kwargs):
    """A torchao quantization config by class name (torchao imported only when used)."""

    def build():
        import torchao.quantization as tq

        args = {k: (v() if callable(v) else v) for k, v in kwargs.items()}
        return getattr(tq, name)(**args)

    return build


def _int4_dtype():
    import torch

    return torch.int4


def _per_group(size: int):
    def make():
        from torchao.quantization import PerGroup

        return PerGroup(size)

    return make


def _per_row():
    from torchao.quantization import PerRow

    return PerRow()


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in [
        Recipe("int8-weight-only", "int8", "Int8WeightOnlyConfig()", _cfg("Int8WeightOnlyConfig")),
        Recipe(
            "int8-dynamic",
            "int8",
            "Int8DynamicActivationInt8WeightConfig()",
            _cfg("Int8DynamicActivationInt8WeightConfig"),
        ),
        # int4 layouts: tinygemm's tile-packed layout (bf16, CUDA), the same with HQQ's scale
        # search, mslk's plain and preshuffled layouts (need the mslk package), and int4 values kept
        # one per byte ("intx", any device: int4 accuracy, int8 memory) as the portable fallback.
        Recipe(
            "int4-tile-packed",
            "int4",
            "Int4WeightOnlyConfig(group_size=128, int4_packing_format='tile_packed_to_4d')",
            _cfg("Int4WeightOnlyConfig", group_size=128, int4_packing_format="tile_packed_to_4d"),
            cuda_only=True,
        ),
        Recipe(
            "int4-tile-packed-hqq",
            "int4",
            "Int4WeightOnlyConfig(group_size=128, int4_packing_format='tile_packed_to_4d', "
            "int4_choose_qparams_algorithm='hqq')",
            _cfg(
                "Int4WeightOnlyConfig",
                group_size=128,
                int4_packing_format="tile_packed_to_4d",
                int4_choose_qparams_algorithm="hqq",
            ),
            cuda_only=True,
        ),
        Recipe(
            "int4-plain",
            "int4",
            "Int4WeightOnlyConfig(group_size=128, int4_packing_format='plain')",
            _cfg("Int4WeightOnlyConfig", group_size=128, int4_packing_format="plain"),
            cuda_only=True,
        ),
        Recipe(
            "int4-preshuffled",
            "int4",
            "Int4WeightOnlyConfig(group_size=128, int4_packing_format='preshuffled')",
            _cfg("Int4WeightOnlyConfig", group_size=128, int4_packing_format="preshuffled"),
            cuda_only=True,
        ),
        Recipe(
            "int4-fp8-dynamic",
            "int4",
            "Float8DynamicActivationInt4WeightConfig()",
            _cfg("Float8DynamicActivationInt4WeightConfig"),
            cuda_only=True,
        ),
        Recipe(
            "int4-intx",
            "int4",
            "IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(32))",
            _cfg("IntxWeightOnlyConfig", weight_dtype=_int4_dtype, granularity=_per_group(32)),
        ),
        Recipe("fp8-weight-only", "fp8", "Float8WeightOnlyConfig()", _cfg("Float8WeightOnlyConfig")),
        Recipe(
            "fp8-dynamic-row",
            "fp8",
            "Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())",
            _cfg("Float8DynamicActivationFloat8WeightConfig", granularity=_per_row),
            cuda_only=True,
        ),
        Recipe(
            "fp8-dynamic-tensor",
            "fp8",
            "Float8DynamicActivationFloat8WeightConfig()",
            _cfg("Float8DynamicActivationFloat8WeightConfig"),
            cuda_only=True,
        ),
    ]
}


def _has(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def fp8_matmul_available(device: str) -> bool:
    import torch

    return device.startswith("cuda") and torch.cuda.get_device_capability(device) >= (8, 9)


def default_recipe(kind: str, device: str, dtype: str) -> tuple[str, str | None]:
    """(recipe name, note or None) for a torchao kind on this device."""
    on_gpu = device.startswith("cuda")
    if kind == "int8":
        return "int8-weight-only", None
    if kind == "int4":
        if on_gpu and dtype == "bfloat16":
            return "int4-tile-packed", None
        why = "need CUDA" if not on_gpu else f"need bfloat16, not {dtype}"
        return (
            "int4-intx",
            f"quantization 'int4': torchao's packed int4 kernels {why}; ran int4 values stored one per byte "
            "(int4 accuracy, int8 weight memory)",
        )
    if fp8_matmul_available(device):
        return "fp8-dynamic-row", None
    return (
        "fp8-weight-only",
        "quantization 'fp8': fp8 matmuls need a GPU of compute capability >= 8.9; "
        "ran fp8 weights dequantized into the run's dtype",
    )


def choose_recipe(kind: str, device: str, dtype: str) -> tuple[str, str | None]:
    """The recipe a torchao kind runs with: `INFERCOMP_QUANT_RECIPE` if set, else the default."""
    asked = os.environ.get(RECIPE_ENV)
    if not asked:
        return default_recipe(kind, device, dtype)
    recipe = RECIPES.get(asked)
    allowed = ", ".join(n for n, r in RECIPES.items() if r.kind == kind)
    if recipe is None or recipe.kind != kind:
        raise QuantizationError(f"{RECIPE_ENV}={asked!r} is not a recipe of kind {kind!r}; allowed: {allowed}")
    if recipe.cuda_only and not device.startswith("cuda"):
        raise QuantizationError(f"{RECIPE_ENV}={asked!r} needs a CUDA device")
    return asked, None


def resolve(kind: str, use_quantization: bool, device: str, dtype: str, load_format: str, tp_size: int):
    """(kind, recipe name or None, notes) that will run, for the config's `quantization` and the
    legacy `use_quantization` switch. Raises QuantizationError where an explicitly asked kind
    cannot run: running another kind would put its numbers under the asked kind's name."""
    notes: list[str] = []
    if kind == "none" and use_quantization:
        kind, note = legacy_kind(device, load_format, tp_size)
        notes.append(note)
        if kind == "none":
            return "none", None, notes
    elif kind != "none" and use_quantization:
        notes.append(f"use_quantization ignored: quantization {kind!r} is set explicitly")
    if kind == "none":
        return "none", None, notes
    if tp_size > 1:
        raise QuantizationError(f"quantization {kind!r} cannot be combined with tensor_parallel_size {tp_size}")
    if kind == "nf4":
        if load_format == "random":
            raise QuantizationError(
                "quantization 'nf4' quantizes stored weights while loading; not load_format 'random'"
            )
        if not _has("bitsandbytes"):
            raise QuantizationError(f"quantization 'nf4' needs bitsandbytes ({QUANT_HINT})")
        return "nf4", None, notes
    if not _has("torchao"):
        raise QuantizationError(f"quantization {kind!r} needs torchao ({QUANT_HINT})")
    recipe, note = choose_recipe(kind, device, dtype)
    if note:
        notes.append(note)
    if os.environ.get(INDUCTOR_ENV) == "1":
        notes.append(f"{INDUCTOR_ENV}=1: torchao's recommended compiler settings are on")
    return kind, recipe, notes


def legacy_kind(device: str, load_format: str, tp_size: int) -> tuple[str, str]:
    """`use_quantization: true`: the fastest 4-bit kind available here, and the note saying so."""
    if tp_size > 1:
        return "none", "use_quantization skipped: 4-bit weights cannot be sharded by tensor parallel"
    on_gpu = device.startswith("cuda")
    if on_gpu and _has("torchao"):
        return "int4", "use_quantization: ran quantization 'int4' (torchao), the fastest 4-bit kind here"
    if _has("bitsandbytes") and load_format != "random":
        return "nf4", "use_quantization: ran quantization 'nf4' (bitsandbytes), the only 4-bit kind here"
    if not on_gpu:  # torchao's int4 on CPU keeps one value per byte: not 4-bit memory, and slower
        why = "torchao's packed int4 kernels need CUDA; set quantization 'int4' for int4 accuracy"
    elif _has("bitsandbytes"):
        why = f"nf4 needs stored weights, not load_format 'random', and torchao is not installed ({QUANT_HINT})"
    else:
        why = f"torchao is not installed ({QUANT_HINT})"
    return "none", f"use_quantization skipped: no 4-bit weights run here ({why})"


# ---------------------------------------------------------------------------------------------
# Applying a recipe


def _config(recipe: str):
    config = RECIPES[recipe].build()
    if hasattr(config, "set_inductor_config"):
        config.set_inductor_config = os.environ.get(INDUCTOR_ENV) == "1"
    return config


def quantize_weight(weight, recipe: str):
    """One (out, in) weight tensor quantized by torchao: wrapped in a temporary nn.Linear, since
    `quantize_` works on modules; returns the quantized tensor subclass, usable with F.linear."""
    import torch
    from torchao.quantization import quantize_

    lin = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False, device="meta")
    lin.weight = torch.nn.Parameter(weight.detach(), requires_grad=False)
    quantize_(lin, _config(recipe))
    return lin.weight.detach()


def quantize_layers(model, recipe: str) -> float:
    """Quantize a transformers model's decoder-layer linears in place; returns the seconds."""
    import torch
    from torchao.quantization import quantize_

    start = time.perf_counter()
    quantize_(model, _config(recipe), filter_fn=lambda m, fqn: isinstance(m, torch.nn.Linear) and ".layers." in fqn)
    _sync(model)
    return time.perf_counter() - start


def _sync(model) -> None:
    import torch

    device = next(model.parameters()).device
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def quantize_lean(lean, recipe: str) -> tuple[float, str | None]:
    """Quantize the fast engine's fused weights (q|k|v, o, gate|up, down of every layer) in place
    and point the transformers modules at slices of them, so both engines (and the quality
    figures, which run the transformers model) use one quantized copy. Returns (seconds, note).

    A layout that cannot be sliced by rows (a packed tile layout may not be) leaves the
    transformers modules with their own quantized copy, said in the note."""
    start = time.perf_counter()
    sliced = True
    for lw, layer in zip(lean.layers, lean.hf.model.layers, strict=True):
        attn, mlp = layer.self_attn, layer.mlp
        for name in ("qkv", "o", "gate_up", "down"):
            setattr(lw, name, quantize_weight(getattr(lw, name), recipe))
        try:
            _point(lw.qkv, [attn.q_proj, attn.k_proj, attn.v_proj])
            _point(lw.gate_up, [mlp.gate_proj, mlp.up_proj])
            _point(lw.o, [attn.o_proj])
            _point(lw.down, [mlp.down_proj])
        except Exception:  # noqa: BLE001 - torchao raises assorted errors for unsupported slicing
            sliced = False
            projections = (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj, mlp.gate_proj, mlp.up_proj)
            for module in (*projections, mlp.down_proj):
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
    if leans:
        for lean in leans:
            s, note = quantize_lean(lean, settings.quantization_recipe)
            seconds += s
            if note and note not in settings.notes:
                settings.notes.append(note)
    else:
        for model in (engine.main, engine.assistant):
            if model is not None:
                seconds += quantize_layers(model, settings.quantization_recipe)
    from infercomp.quant_table import apply_tables

    layers = "every decoder layer's q, k, v, o, gate, up, down projections"
    settings.notes.append(f"quantized tensors: {layers} ({settings.quantization_recipe}); norms in the run's dtype")
    seconds += apply_tables(engine, leans)  # the 4-bit kinds' int8 token table; notes which
    settings.quantization_seconds = round(seconds, 3)
    if probe is not None:
        settings.quantization_quality = probe.compare()
