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

The decoder layers' projections are quantized by torchao, or packed in infercomp's own int8 and
int4 formats read by its own Triton kernels (recipes "int8-infercomp", "int4-infercomp":
fast.packed; no torchao needed, and on CPU dequantized per product); the token table (embedding and the
often tied LM head) stays in the run's dtype, except for the int4 and int8 kinds, where it becomes
an int8 table (`quant_table`). Both engines run the same quantized tensors, so the same numbers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

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
    build: Callable[[], object] | None  # () -> a torchao config for `quantize_`; None: infercomp's own
    cuda_only: bool = False
    bits: int = 0  # infercomp's own formats (fast.packed): 8 or 4; 0 for torchao's

    @property
    def own(self) -> bool:
        return self.bits > 0


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
        # infercomp's own formats and Triton kernels (fast.packed), laid out for its one-row kernel;
        # on CPU the weights are dequantized per product (the reference path)
        Recipe("int8-infercomp", "int8", "infercomp int8: one scale per output row", None, bits=8),
        Recipe("int4-infercomp", "int4", "infercomp int4: asymmetric groups of up to 128 columns", None, bits=4),
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
    recipe, note = choose_recipe(kind, device, dtype)
    if not RECIPES[recipe].own and not _has("torchao"):
        raise QuantizationError(f"quantization {kind!r} needs torchao ({QUANT_HINT})")
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
