"""Triton products for a few rows against a large weight: x (M, K) @ weight (N, K).T for M of
2-64 (a decode step's batch, a verify block, a beam group), in place of cuBLAS (fast/products.py).

Why its own kernel: at 32 rows cuBLAS read Qwen3-4B's weights at 1.75-2.39 TB/s against a copy
bandwidth of 2.97 (docs/measurements/2026-11-28-h100-draw, call-4). Such a product is a stream
over the weight; the rows are a small tile every program rereads from L2. So each program takes
BLOCK_N weight rows and 1/SPLIT of the columns, and multiplies in the transposed order,
weight tile (BLOCK_N, BLOCK_K) @ x tile.T (BLOCK_K, BLOCK_M): the weight rows fill the tensor
cores' wide side and the few input rows the narrow one ("swap AB"). With SPLIT > 1 every program
stores its float32 partial sums, (SPLIT, M, N), for the kernel that consumes the product to add
up (the compiler folds that sum into the next fused kernel). gated_body does gate|up's product
and silu(gate) * up in one kernel (off by default: fast.products.GATED).

Measured on H100s (docs/measurements/2026-11-28-h100-rows): alone at 32 rows, q|k|v, o and
gate|up 2-8 % faster than cuBLAS's best form of each, down tied; the batch-32 step against cuBLAS
in one process 4.164 -> 3.953, 4.087 -> 3.932 and 4.302 -> 3.919 ms (three machines), batch 4
3.754 -> 3.673 and 3.843 -> 3.655. Measured there and not kept: the work split evenly over the
SMs (stream-K; alone no faster on gate|up and q|k|v, about as fast on o and down, slower in the
step), tiles brought by the copy engine (TMA; tied in the step), and programmatic dependent
launch (alone faster on some products and slower on others; in the step slower at batch 32,
faster at batch 4).

Imported only where Triton is installed; the interpreter (TRITON_INTERPRET=1) runs it on CPU
(in float16: its bfloat16 tl.dot returns garbage).
"""

import os

import torch
import triton
import triton.language as tl
from triton.language.extra.cuda import gdc_launch_dependents

from infercomp.fast.gemv_kernel import pdl


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
    TRIGGER: tl.constexpr = False,
):
    if TRIGGER:  # see TRIGGER below the kernels
        gdc_launch_dependents()
    n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    n_ok = n < N
    m = tl.arange(0, BLOCK_M)
    m_ok = m < M
    span = tl.cdiv(tl.cdiv(K, SPLIT), BLOCK_K) * BLOCK_K  # this program's columns: [lo, lo + span)
    lo = tl.program_id(1) * span
    hi = tl.minimum(lo + span, K)
    acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    for k0 in range(lo, hi, BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        k_ok = k < hi
        w = tl.load(w_ptr + n[:, None] * K + k[None, :], mask=n_ok[:, None] & k_ok[None, :], other=0.0)
        xt = tl.load(x_ptr + m[None, :] * K + k[:, None], mask=m_ok[None, :] & k_ok[:, None], other=0.0)
        acc = tl.dot(w, xt, acc)  # (BLOCK_N, BLOCK_M) += (BLOCK_N, BLOCK_K) @ (BLOCK_K, BLOCK_M)
    out = y_ptr + tl.program_id(1) * M * N + m[None, :] * N + n[:, None]  # y[s, m, n] = acc[n, m]
    tl.store(out, acc.to(y_ptr.dtype.element_ty), mask=n_ok[:, None] & m_ok[None, :])


@triton.jit
def gated_body(
    x_ptr,  # (M, K), rows contiguous
    w_ptr,  # (2 N, K): gate's N rows, then up's
    y_ptr,  # (M, N) silu(x @ gate.T) * (x @ up.T)
    M,
    N,
    K,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_M: tl.constexpr,
):
    """gate|up's product and the activation after it: each program streams BLOCK_N gate rows and
    the same BLOCK_N up rows, and stores silu(gate) * up for its BLOCK_N outputs. Gate and up are
    rounded to the output dtype first, as the separate product would store them."""
    n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    n_ok = n < N
    m = tl.arange(0, BLOCK_M)
    m_ok = m < M
    gate = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    up = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        w_ok = n_ok[:, None] & (k < K)[None, :]
        wg = tl.load(w_ptr + n[:, None] * K + k[None, :], mask=w_ok, other=0.0)
        wu = tl.load(w_ptr + (N + n[:, None]) * K + k[None, :], mask=w_ok, other=0.0)
        xt = tl.load(x_ptr + m[None, :] * K + k[:, None], mask=m_ok[None, :] & (k < K)[:, None], other=0.0)
        gate = tl.dot(wg, xt, gate)  # (BLOCK_N, BLOCK_M)
        up = tl.dot(wu, xt, up)
    dtype = y_ptr.dtype.element_ty
    g = gate.to(dtype).to(tl.float32)
    h = g * tl.sigmoid(g) * up.to(dtype).to(tl.float32)
    tl.store(y_ptr + m[None, :] * N + n[:, None], h.to(dtype), mask=n_ok[:, None] & m_ok[None, :])


# Whether the products let a kernel launched after them as a programmatic dependent start its
# programs at once. Only the attention after q|k|v is launched so (fast/attend_kernel.py
# fresh_kernel, which waits for the product's results before it reads them); the compiled kernels
# after the other products start when the product ends, as they would without this. The early
# programs load their positions and rotary tables (and, at few rows, ask L2 for their cached keys
# and values: fast/attend_kernel.py PREFETCH) while the product streams its weight. Qwen3-4B on
# one H100, one process, ms a step (docs/measurements/2026-11-28-h100-overlap, call-2): batch 4
# 3.637 -> 3.552, batch 32 3.908 -> 3.900.
TRIGGER = True


def _configs(shapes):
    return [triton.Config({"BLOCK_N": bn, "BLOCK_K": bk}, num_warps=4, num_stages=st) for bn, bk, st in shapes]


# The block sizes each shape's launches choose from, timed once per shape (triton.autotune flushes
# L2 between timings, so each candidate streams its weight from memory as in a step): 64 weight
# rows by 128 columns a step, the best block in benchmarks/gemm_bench.py's timings (128-row blocks
# and 256-column steps were slower), at the pipelining depths that won for some projection there
# (3 stages for gate|up, 4 or 5 for the others; they differ by up to 17 % on one projection).
ROWS_CONFIGS = _configs([(64, 128, 3), (64, 128, 4), (64, 128, 5)])
GATED_CONFIGS = _configs([(32, 128, 3), (32, 128, 4), (32, 128, 5), (64, 128, 3)])
if os.environ.get("TRITON_INTERPRET") == "1":  # the CPU interpreter: one config, no timing
    ROWS_CONFIGS = GATED_CONFIGS = _configs([(64, 32, 2)])
rows_tuned = triton.autotune(configs=ROWS_CONFIGS, key=["M", "N", "K", "SPLIT"])(rows_body)
gated_tuned = triton.autotune(configs=GATED_CONFIGS, key=["M", "N", "K"])(gated_body)


def block_m(rows: int) -> int:
    """The input rows' tile: a power of two of at least 16 (the tensor cores' narrowest side)."""
    return max(16, triton.next_power_of_2(rows))


def _check_rows(x: torch.Tensor, weight: torch.Tensor) -> None:
    """The kernels index x (M, K) and weight (N, K) as rows of K contiguous values."""
    k = x.shape[1]
    assert x.stride(1) == 1 and (x.shape[0] == 1 or x.stride(0) == k) and weight.is_contiguous(), "rows of K values"


def launch(x: torch.Tensor, weight: torch.Tensor, config: dict) -> torch.Tensor:
    """x (M, K) @ weight (N, K).T: (M, N) in x's dtype when config's SPLIT is 1, else the SPLIT
    float32 partial sums (SPLIT, M, N). config: SPLIT, and fixed BLOCK_N, BLOCK_K, num_warps,
    num_stages (benchmarks), or only SPLIT for the autotuned choice among ROWS_CONFIGS."""
    (rows, k), n = x.shape, weight.shape[0]
    _check_rows(x, weight)
    split = config["SPLIT"]
    y = x.new_empty(split, rows, n, dtype=x.dtype if split == 1 else torch.float32)
    grid = lambda meta: (triton.cdiv(n, meta["BLOCK_N"]), split)  # noqa: E731
    kernel = rows_tuned if len(config) == 1 else rows_body
    trigger = TRIGGER and pdl(x.device)  # Hopper and later, unless INFERCOMP_PDL=0
    kernel[grid](x, weight, y, rows, n, k, BLOCK_M=block_m(rows), TRIGGER=trigger, **config)
    return y[0] if split == 1 else y


def gated_launch(x: torch.Tensor, weight: torch.Tensor, config: dict | None = None) -> torch.Tensor:
    """silu(x @ gate.T) * (x @ up.T), (M, N), for weight (2 N, K) = [gate; up]; config: fixed
    BLOCK_N, BLOCK_K, num_warps, num_stages (benchmarks), or None for the autotuned choice."""
    (rows, k), n = x.shape, weight.shape[0] // 2
    _check_rows(x, weight)
    y = x.new_empty(rows, n)
    grid = lambda meta: (triton.cdiv(n, meta["BLOCK_N"]),)  # noqa: E731
    kernel = gated_tuned if config is None else gated_body
    kernel[grid](x, weight, y, rows, n, k, BLOCK_M=block_m(rows), **(config or {}))
    return y
