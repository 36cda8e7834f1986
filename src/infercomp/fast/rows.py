"""Products of a few rows (2..64: a batch's decode step, beams, a verify block) with the same
neighbours fused in as fast.gemv's single-row products: the input norm or the activation as a
prologue, the residual add as an epilogue (fast/rows_kernel.py).

Without it a layer at 32 rows is four cuBLAS products (two of them split over K, with a reduction
kernel each) and five small compiled kernels for the norms, the activation and the residual adds;
with it, four kernels, launched with programmatic dependent launch like the single-row ones.
Plain weights only: infercomp's packed int8/int4 formats and torchao's tensors keep their paths.

Runs on CUDA with Triton only (or Triton's CPU interpreter, for tests). INFERCOMP_FAST_ROWS=0
keeps the cuBLAS products (the knob that measures what it buys).
"""

from __future__ import annotations

import os

import torch

from infercomp.fast.triton_import import kernel_or_false

MAX_ROWS = 64  # as fast.rows_kernel.MAX_ROWS, which needs Triton to import

_KERNEL = None
READY = False  # set by prepare()


def prepare(device: torch.device, enabled: bool = True) -> bool:
    """Build the kernel where it can run (CUDA with Triton, or Triton's interpreter for tests)
    unless INFERCOMP_FAST_ROWS=0. Returns READY."""
    global READY
    if not (device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"):
        return READY  # a CPU engine beside a CUDA one leaves the CUDA one's choice alone
    wanted = enabled and os.environ.get("INFERCOMP_FAST_ROWS", "1") != "0"
    READY = bool(wanted and _kernel() is not None)
    return READY


def serves(x: torch.Tensor, *weights) -> bool:
    """Whether the products of one layer with input x (B, q, hidden) go through this kernel: 2 to
    MAX_ROWS rows, and plain contiguous weights of x's dtype with fewer than 2^31 elements (the
    kernel's offsets are int32)."""
    on_device = x.is_cuda or os.environ.get("TRITON_INTERPRET") == "1"
    rows = x.shape[0] * x.shape[1]
    return READY and on_device and 2 <= rows <= MAX_ROWS and all(_servable(w, x.dtype) for w in weights)


def _servable(w, dtype: torch.dtype) -> bool:
    return type(w) is torch.Tensor and w.dtype == dtype and w.is_contiguous() and w.numel() < 2**31


def _kernel():
    """The launcher of fast/rows_kernel.py, or None where Triton is not installed."""
    global _KERNEL
    if _KERNEL is None:
        _KERNEL = kernel_or_false("infercomp.fast.rows_kernel", "launch")
    return _KERNEL or None


@torch.library.custom_op("infercomp::rows_product", mutates_args=())
def product(
    x: torch.Tensor,
    weight: torch.Tensor,
    norm: torch.Tensor | None,
    residual: torch.Tensor | None,
    eps: float,
    prologue: int,
) -> torch.Tensor:
    """x (..., K) or (..., 2K) for fast.gemv.SILU, weight (N, K), residual (..., N) -> (..., N);
    the prologues and the residual as fast.gemv.gemv. An opaque call to the compiler."""
    lead = x.shape[:-1]
    y = _kernel()(
        x.reshape(-1, x.shape[-1]).contiguous(),
        weight,  # contiguous: serves() checked
        norm,
        None if residual is None else residual.reshape(-1, weight.shape[0]).contiguous(),
        eps,
        prologue,
    )
    return y.view(*lead, weight.shape[0])


@product.register_fake
def _(x, weight, norm, residual, eps, prologue):
    return x.new_empty(*x.shape[:-1], weight.shape[0])
