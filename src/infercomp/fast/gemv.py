"""Single-row matrix-vector products for the decode step, with their neighbours fused in.

At one row a decode step is the weights' bytes read once: each projection is a matrix-vector
product whose only cost is streaming the weight matrix. The compiler's own fused kernels for
these reach the bandwidth in some compilations and not in others (their block sizes come from a
timing search that lands in different local minima); this kernel picks its block sizes by timing
a short fixed list once per shape, so the step is the same from one run to the next.

One kernel, three prologues on the input row x, chosen at compile time:
  - none:    y = x @ W.T
  - rmsnorm: y = rms_norm(x) @ W.T       (the layer's input and post-attention norms)
  - silu:    y = (silu(g) * u) @ W.T     (x = [g | u], the gate|up product; the MLP's down)
and an optional residual: y += r. Roundings follow the unfused reference: the normed or activated
row is rounded to the model dtype before the product, the product before the residual add.

infercomp's own int8/int4 weights (fast.packed) take the same prologues and epilogue through their
own kernels: `product` picks the kernel by the weight's format.

Runs on CUDA with Triton only (or Triton's CPU interpreter, for tests).
"""

from __future__ import annotations

import os

import torch

from infercomp.fast import packed
from infercomp.fast.packed import PackedWeight
from infercomp.fast.triton_import import kernel_or_false

NONE, RMSNORM, SILU = 0, 1, 2

_KERNEL = None
READY = False  # set by prepare(): single-row products of plain weights go through this kernel


def prepare(device: torch.device, enabled: bool = True) -> bool:
    """Build the kernel where it can run (CUDA with Triton, or Triton's interpreter for tests)
    unless INFERCOMP_FAST_GEMV=0 (the knob that measures what it buys). Returns READY."""
    global READY
    if not (device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"):
        return READY  # a CPU engine beside a CUDA one leaves the CUDA one's choice alone
    wanted = enabled and os.environ.get("INFERCOMP_FAST_GEMV", "1") != "0"
    READY = bool(wanted and _kernel() is not None)
    if READY:
        from infercomp.fast.gemv_kernel import counts

        counts(device)  # the split launches' counters exist before any CUDA graph is captured
    return READY


def serves(x: torch.Tensor, *weights) -> bool:
    """Whether the products of one layer with input x (B, q, hidden) go through these kernels: one
    row, and weights that are either plain contiguous tensors of x's dtype with fewer than 2^31
    elements (the kernel's offsets are int32), or infercomp's packed int8/int4 weights (fast.packed;
    torchao's quantized tensors keep their own kernels)."""
    on_device = x.is_cuda or os.environ.get("TRITON_INTERPRET") == "1"
    return READY and on_device and x.shape[0] * x.shape[1] == 1 and all(_servable(w, x.dtype) for w in weights)


def _servable(w, dtype: torch.dtype) -> bool:
    if isinstance(w, PackedWeight):
        return w.dtype == dtype and w.codes.numel() < 2**31 and packed.kernels() is not None
    return type(w) is torch.Tensor and w.dtype == dtype and w.is_contiguous() and w.numel() < 2**31


def product(x, weight, norm, residual, eps: float, prologue: int) -> torch.Tensor:
    """One row through the kernel that reads `weight`'s format: gemv for plain weights, the packed
    kernels for int8/int4 ones (the same prologues and residual)."""
    if isinstance(weight, PackedWeight):
        w = weight
        return packed.packed_gemv(x, w.codes, w.scale, w.low, norm, residual, eps, prologue, w.bits, w.group)
    return gemv(x, weight, norm, residual, eps, prologue)


def _kernel():
    """The launcher of fast/gemv_kernel.py, or None where Triton is not installed."""
    global _KERNEL
    if _KERNEL is None:
        _KERNEL = kernel_or_false("infercomp.fast.gemv_kernel", "launch")
    return _KERNEL or None


@torch.library.custom_op("infercomp::gemv", mutates_args=())
def gemv(
    x: torch.Tensor,
    weight: torch.Tensor,
    norm: torch.Tensor | None,
    residual: torch.Tensor | None,
    eps: float,
    prologue: int,
) -> torch.Tensor:
    """One row: x (..., K) or (..., 2K) for SILU, weight (N, K), residual (..., N) -> (..., N).
    An opaque call to the compiler, which fuses nothing into it."""
    lead = x.shape[:-1]
    y = _kernel()(
        x.reshape(-1).contiguous(),
        weight,  # contiguous: serves() checked
        norm,
        None if residual is None else residual.reshape(-1).contiguous(),
        eps,
        prologue,
    )
    return y.view(*lead, weight.shape[0])


@gemv.register_fake
def _(x, weight, norm, residual, eps, prologue):
    return x.new_empty(*x.shape[:-1], weight.shape[0])
