"""The matrix products of a layer of several rows (and the knobs that choose how they run).

A layer of one row runs infercomp's own one-row kernels (fast.gemv, fast.packed) with the norms
and residuals fused in; a layer of several rows runs these functions, with the compiler fusing
what comes before and after each product: infercomp's few-row Triton kernels (fast/rows_kernel.py)
for compiled products of 2-64 rows on a Hopper GPU (decode steps, verify blocks, beam groups,
prefills that short), cuBLAS for the rest (longer prefills, other GPUs, CPU, 4-byte dtypes).
"""

from __future__ import annotations

import os
import warnings

import torch
import torch.nn.functional as F

from infercomp.fast import packed
from infercomp.fast.packed import PackedWeight
from infercomp.fast.triton_import import kernel_or_false

# Projections kept as cuBLAS calls even where the compiler's block-size search would turn a
# batch-1 product into a fused Triton reduction (names from qkv, o, gate_up, down). A knob to
# measure per projection which kernel reads its weights faster.
CUBLAS_PROJECTIONS = frozenset(filter(None, os.environ.get("INFERCOMP_FAST_CUBLAS", "").split(",")))


NAMES = ("qkv", "o", "gate_up", "down")


def _per_projection(spec: str) -> dict[str, int]:
    """Parse "o:4,down:4" into {"o": 4, "down": 4}; a malformed entry is left out with a warning."""
    out = {}
    for part in filter(None, spec.split(",")):
        name, _, count = part.partition(":")
        if name in NAMES and count.isdigit() and int(count) >= 1:
            out[name] = int(count)
        else:
            warnings.warn(
                f"INFERCOMP_FAST_PARTIALS: {part!r} ignored (expected name:N, name from {', '.join(NAMES)})",
                stacklevel=2,
            )
    return out


# Projections of several rows (CUDA, 2-byte weights) computed as S products over slices of the
# inner dimension, in float32, whose sum the compiler folds into the kernel that consumes the
# product (the residual add and norm after o, the residual add after down, the activation after
# gate|up). cuBLAS splits o and down at 32 rows itself and sums the parts in a reduction kernel
# of its own: 72 kernels a Qwen3-4B step. Qwen3-4B at 32 rows, one H100, one process
# (docs/measurements/2026-11-28-h100-partials, call-1): 4.517 ms a step with cuBLAS's split,
# 4.346 with o:4,down:4, 4.387 with o:2,down:4, 5.020 with o:4,down:8; gate_up:2 and qkv:2 lost;
# at 4 rows (call-2) 3.998 ms without parts, 3.859 with o:4,down:4.
# A knob, "name:S,..." from qkv, o, gate_up, down; it serves compiled products (eager, the sum
# would be kernels of its own) of PARTIALS_ROWS rows (a decode step's batch, a verify block, a
# short prefill; a long prefill's thousands of rows would make the float32 parts larger than the
# weight, and cuBLAS does not split such products) on the devices in PARTIALS_DEVICES (on CPU
# the parts would be float32 copies of the weights).
PARTIALS = _per_projection(os.environ.get("INFERCOMP_FAST_PARTIALS", "o:4,down:4"))
PARTIALS_ROWS = range(2, 65)
PARTIALS_DEVICES = frozenset({"cuda"})

# Products of PARTIALS_ROWS rows by infercomp's own Triton kernels (fast/rows_kernel.py) instead
# of cuBLAS, in the same float32 parts (PARTIALS) where a projection has them. Qwen3-4B on H100s,
# each pair in one process (docs/measurements/2026-11-28-h100-rows): batch 32 4.164 -> 3.953,
# 4.087 -> 3.932 and 4.302 -> 3.919 ms a step; batch 4 3.754 -> 3.673 and 3.843 -> 3.655 (the
# first two with an earlier, wider list of block choices).
# INFERCOMP_FAST_ROWS=0 keeps cuBLAS (the knob that measures them). GATED: gate|up's product and
# its activation in one kernel, off: the step measured 3.919 -> 3.94 ms (batch 32) and
# 3.655 -> 3.666 (batch 4) with it (call 4).
ROWS = os.environ.get("INFERCOMP_FAST_ROWS", "1") != "0"
GATED = False
ROWS_READY = False  # set by prepare(), before compiling: the compiler cannot import or ask the device


def _rows_kernel():
    return kernel_or_false("infercomp.fast.rows_kernel")


def prepare(device: torch.device) -> bool:
    """Whether compiled products of 2-64 rows on `device` take the few-row kernels: ROWS, Triton
    importable, and a Hopper GPU (compute capability 9: H100, H200), the only kind they were
    measured and sized on (5 pipelining stages of up to 32 KB); elsewhere cuBLAS. A CPU engine
    beside a CUDA one leaves the CUDA one's choice alone. Returns ROWS_READY."""
    global ROWS_READY
    if device.type == "cuda":
        hopper = torch.cuda.get_device_capability(device)[0] == 9
        ROWS_READY = bool(ROWS and hopper and _rows_kernel())
    return ROWS_READY


@torch.library.custom_op("infercomp::rows_product", mutates_args=())
def rows_product(x: torch.Tensor, weight: torch.Tensor, splits: int) -> torch.Tensor:
    """x (M, K) @ weight (N, K).T by fast/rows_kernel.py: (M, N) in x's dtype for splits 1, else
    (splits, M, N) float32 partial sums."""
    return _rows_kernel().launch(x.contiguous(), weight, {"SPLIT": splits})


@rows_product.register_fake
def _(x: torch.Tensor, weight: torch.Tensor, splits: int) -> torch.Tensor:
    if splits == 1:
        return x.new_empty(x.shape[0], weight.shape[0])
    return x.new_empty(splits, x.shape[0], weight.shape[0], dtype=torch.float32)


@torch.library.custom_op("infercomp::gated_product", mutates_args=())
def gated_product(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """silu(x @ gate.T) * (x @ up.T), (M, N), for x (M, K) and weight (2 N, K) = [gate; up]."""
    return _rows_kernel().gated_launch(x.contiguous(), weight)


@gated_product.register_fake
def _(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return x.new_empty(x.shape[0], weight.shape[0] // 2)


def _rows_serve(x: torch.Tensor, weight, bias, splits: int) -> bool:
    """Whether fast/rows_kernel.py takes x (..., in) @ weight.T (in `splits` parts)."""
    return ROWS_READY and bias is None and _parts_serve(x, weight, splits) and weight.is_contiguous()


def gated(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up for x (..., in) and weight (2 inter, in) = [gate; up]: (..., inter)."""
    if GATED and _rows_serve(x, weight, None, 1):
        flat = gated_product(x.reshape(-1, x.shape[-1]), weight)  # (M, inter)
        return flat.view(*x.shape[:-1], weight.shape[0] // 2)
    gate, up = project("gate_up", x, weight).chunk(2, dim=-1)
    return F.silu(gate) * up


@torch.library.custom_op("infercomp::cublas_linear", mutates_args=())
def cublas_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x @ weight.T as one opaque call: the compiler neither decomposes nor fuses into it."""
    return F.linear(x, weight)


@cublas_linear.register_fake
def _(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return x.new_empty(*x.shape[:-1], weight.shape[0])


@torch.library.custom_op("infercomp::partial_products", mutates_args=())
def partial_products(x: torch.Tensor, weight: torch.Tensor, splits: int) -> torch.Tensor:
    """x (M, K) @ weight.T as `splits` products over K slices: (splits, M, N) float32 partial sums."""
    m, k = x.shape
    xs = x.view(m, splits, k // splits).transpose(0, 1)  # (S, M, K/S), rows k apart
    ws = weight.view(weight.shape[0], splits, k // splits).permute(1, 2, 0)  # (S, K/S, N)
    if x.is_cuda:  # one strided batched cuBLAS call, 2-byte inputs, float32 accumulation and output
        return torch.bmm(xs, ws, out_dtype=torch.float32)
    return torch.bmm(xs.float(), ws.float())  # the same sums (2-byte values are exact in float32)


@partial_products.register_fake
def _(x: torch.Tensor, weight: torch.Tensor, splits: int) -> torch.Tensor:
    return x.new_empty(splits, x.shape[0], weight.shape[0], dtype=torch.float32)


def project(name: str, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """One projection of a layer: (..., in) -> (..., out)."""
    if isinstance(weight, PackedWeight):  # infercomp's int8/int4 formats: their own kernels
        return packed.linear(x, weight) if bias is None else packed.linear(x, weight) + bias
    if name in CUBLAS_PROJECTIONS and bias is None:
        return cublas_linear(x, weight)
    splits = PARTIALS.get(name, 1)
    flat = x.reshape(-1, x.shape[-1])  # (M, in)
    if _rows_serve(x, weight, bias, splits):
        out = rows_product(flat, weight, splits)  # (M, out), or (S, M, out) float32 parts
    elif splits > 1 and bias is None and _parts_serve(x, weight, splits):
        out = partial_products(flat, weight, splits)  # (S, M, out) float32 parts
    else:
        return F.linear(x, weight, bias)
    out = out.sum(0).to(x.dtype) if out.dim() == 3 else out
    return out.view(*x.shape[:-1], weight.shape[0])


def _parts_serve(x: torch.Tensor, weight: torch.Tensor, splits: int) -> bool:
    """Whether x (..., in) @ weight.T may be taken in `splits` float32 parts (see PARTIALS); with
    splits 1, whether infercomp's few-row kernels may take it (see ROWS): the same conditions."""
    if not torch.compiler.is_compiling():
        return False
    rows = x.numel() // x.shape[-1]
    plain = type(weight) is torch.Tensor  # not a quantized tensor subclass (torchao's own products)
    whole_blocks = x.shape[-1] % (8 * splits) == 0  # each part's slice starts 16-byte aligned
    dtype_ok = x.element_size() == 2 and weight.dtype == x.dtype
    return plain and dtype_ok and whole_blocks and rows in PARTIALS_ROWS and x.device.type in PARTIALS_DEVICES
