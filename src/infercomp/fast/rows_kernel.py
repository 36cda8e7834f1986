"""A Triton product for a few rows against a large weight: x (M, K) @ weight (N, K).T for M of
2-64 (a decode step's batch, a verify block), an alternative to cuBLAS measured by
benchmarks/gemm_bench.py.

Why its own kernel: at 32 rows cuBLAS read Qwen3-4B's weights at 1.75-2.46 TB/s against a copy
bandwidth of 2.97 (docs/measurements/2026-11-28-h100-draw, call-4). Such a product is a stream
over the weight; the rows are a small tile every program rereads from L2. So each program takes
BLOCK_N weight rows and 1/SPLIT of the columns, and multiplies in the transposed order,
weight tile (BLOCK_N, BLOCK_K) @ x tile.T (BLOCK_K, BLOCK_M): the weight rows fill the tensor
cores' 64-wide side and the few input rows the narrow one ("swap AB"). With SPLIT > 1 every
program stores its float32 partial sums, (SPLIT, M, N), for the kernel that consumes the product
to add up (fast/products.py: the compiler folds that sum into the next fused kernel).

Imported only where Triton is installed; the interpreter (TRITON_INTERPRET=1) runs it on CPU.
"""

import os

import torch
import triton
import triton.language as tl
from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait
from triton.tools.tensor_descriptor import TensorDescriptor


@triton.jit
def rows_body(
    x_ptr,  # (M, K), rows contiguous, row stride K
    w_ptr,  # (N, K), rows contiguous
    y_ptr,  # (SPLIT, M, N): the input's dtype when SPLIT == 1, else float32
    M,
    N,
    K,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_M: tl.constexpr,
    SPLIT: tl.constexpr,
    PDL: tl.constexpr,
):
    n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    n_ok = n < N
    m = tl.arange(0, BLOCK_M)
    m_ok = m < M
    span = tl.cdiv(tl.cdiv(K, SPLIT), BLOCK_K) * BLOCK_K  # this program's columns: [lo, lo + span)
    lo = tl.program_id(1) * span
    hi = tl.minimum(lo + span, K)
    if PDL:  # the weight does not depend on the kernel before; the rows do: wait for it here
        gdc_wait()
        gdc_launch_dependents()
    acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    for k0 in range(lo, hi, BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        k_ok = k < hi
        w = tl.load(w_ptr + n[:, None] * K + k[None, :], mask=n_ok[:, None] & k_ok[None, :], other=0.0)
        xt = tl.load(x_ptr + m[None, :] * K + k[:, None], mask=m_ok[None, :] & k_ok[:, None], other=0.0)
        acc = tl.dot(w, xt, acc)  # (BLOCK_N, BLOCK_M) += (BLOCK_N, BLOCK_K) @ (BLOCK_K, BLOCK_M)
    out = y_ptr + tl.program_id(1) * M * N + m[None, :] * N + n[:, None]  # y[s, m, n] = acc[n, m]
    tl.store(out, acc.to(y_ptr.dtype.element_ty), mask=n_ok[:, None] & m_ok[None, :])


# The block sizes the engine's launches choose from, timed once per shape (triton.autotune flushes
# L2 between timings, so each candidate streams its weight from memory as in a step). A first
# grid, to be narrowed by benchmarks/gemm_bench.py's timings.
CONFIGS = [
    triton.Config({"BLOCK_N": bn, "BLOCK_K": bk}, num_warps=4, num_stages=st)
    for bn in (64, 128)
    for bk in (128, 256)
    for st in (3, 5)
    if bn * bk * st <= 128 * 128 * 5  # the weight's stages within shared memory
]
if os.environ.get("TRITON_INTERPRET") == "1":  # the CPU interpreter: one config, no timing
    CONFIGS = [triton.Config({"BLOCK_N": 64, "BLOCK_K": 32}, num_warps=4, num_stages=2)]
rows_tuned = triton.autotune(configs=CONFIGS, key=["M", "N", "K", "SPLIT"])(rows_body)


def _tile_shapes(nargs):
    """Before each launch of rows_tma_tuned: the descriptors' tiles for the config being run."""
    nargs["x_desc"].block_shape = [block_m(nargs["M"]), nargs["BLOCK_K"]]
    nargs["w_desc"].block_shape = [nargs["BLOCK_N"], nargs["BLOCK_K"]]


TMA_CONFIGS = [
    triton.Config({"BLOCK_N": bn, "BLOCK_K": bk}, num_warps=4, num_stages=st, pre_hook=_tile_shapes)
    for bn, bk, st in ((64, 128, 3), (64, 128, 4), (64, 128, 6), (128, 128, 3), (128, 128, 4), (64, 256, 3))
]
if os.environ.get("TRITON_INTERPRET") == "1":
    TMA_CONFIGS = [triton.Config({"BLOCK_N": 64, "BLOCK_K": 32}, num_warps=4, num_stages=2, pre_hook=_tile_shapes)]


@triton.jit
def rows_tma_body(
    x_desc,  # (M, K) in blocks of (BLOCK_M, BLOCK_K); rows past M and columns past K read as zeros
    w_desc,  # (N, K) in blocks of (BLOCK_N, BLOCK_K)
    y_ptr,  # (SPLIT, M, N): the input's dtype when SPLIT == 1, else float32
    M,
    N,
    K,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_M: tl.constexpr,
    SPLIT: tl.constexpr,
    PDL: tl.constexpr,
):
    """rows_body with its tiles brought by the copy engine (TMA): one instruction a tile instead
    of an address and a mask per element, and no masks (the descriptor pads with zeros)."""
    n0 = tl.program_id(0) * BLOCK_N
    span = tl.cdiv(tl.cdiv(K, SPLIT), BLOCK_K) * BLOCK_K
    lo = tl.program_id(1) * span
    hi = tl.minimum(lo + span, K)
    if PDL:
        gdc_wait()
        gdc_launch_dependents()
    acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    for k0 in range(lo, hi, BLOCK_K):  # span is whole steps: only K's last step reads past K
        w = w_desc.load([n0, k0])  # (BLOCK_N, BLOCK_K)
        x = x_desc.load([0, k0])  # (BLOCK_M, BLOCK_K)
        acc = tl.dot(w, x.T, acc)  # (BLOCK_N, BLOCK_M)
    n = n0 + tl.arange(0, BLOCK_N)
    m = tl.arange(0, BLOCK_M)
    out = y_ptr + tl.program_id(1) * M * N + m[None, :] * N + n[:, None]  # y[s, m, n] = acc[n, m]
    tl.store(out, acc.to(y_ptr.dtype.element_ty), mask=(n < N)[:, None] & (m < M)[None, :])


rows_tma_tuned = triton.autotune(configs=TMA_CONFIGS, key=["M", "N", "K", "SPLIT"])(rows_tma_body)


def tma_launch(x: torch.Tensor, weight: torch.Tensor, config: dict, pdl: bool = False) -> torch.Tensor:
    """launch's product by rows_tma_body; config: SPLIT, and fixed BLOCK_N, BLOCK_K, num_warps,
    num_stages, or only SPLIT for the autotuned choice among TMA_CONFIGS."""
    (rows, k), n = x.shape, weight.shape[0]
    split, bm = config["SPLIT"], block_m(rows)
    y = x.new_empty(split, rows, n, dtype=x.dtype if split == 1 else torch.float32)
    bk, bn = config.get("BLOCK_K", 128), config.get("BLOCK_N", 64)  # the tuned launch's pre_hook resets them
    x_desc = TensorDescriptor.from_tensor(x, [bm, bk])
    w_desc = TensorDescriptor.from_tensor(weight, [bn, bk])
    grid = lambda meta: (triton.cdiv(n, meta["BLOCK_N"]), split)  # noqa: E731
    kernel = rows_tma_tuned if len(config) == 1 else rows_tma_body
    kernel[grid](x_desc, w_desc, y, rows, n, k, BLOCK_M=bm, PDL=pdl, launch_pdl=pdl, **config)
    return y[0] if split == 1 else y


def block_m(rows: int) -> int:
    """The input rows' tile: a power of two of at least 16 (the tensor cores' narrowest side)."""
    return max(16, triton.next_power_of_2(rows))


def launch(x: torch.Tensor, weight: torch.Tensor, config: dict, pdl: bool = False) -> torch.Tensor:
    """x (M, K) @ weight (N, K).T: (M, N) in x's dtype when config's SPLIT is 1, else the SPLIT
    float32 partial sums (SPLIT, M, N). config: SPLIT, and fixed BLOCK_N, BLOCK_K, num_warps,
    num_stages (benchmarks), or only SPLIT for the autotuned choice among CONFIGS."""
    (rows, k), n = x.shape, weight.shape[0]
    split = config["SPLIT"]
    y = x.new_empty(split, rows, n, dtype=x.dtype if split == 1 else torch.float32)
    grid = lambda meta: (triton.cdiv(n, meta["BLOCK_N"]), split)  # noqa: E731
    kernel = rows_tuned if len(config) == 1 else rows_body
    kernel[grid](x, weight, y, rows, n, k, BLOCK_M=block_m(rows), PDL=pdl, launch_pdl=pdl, **config)
    return y[0] if split == 1 else y
