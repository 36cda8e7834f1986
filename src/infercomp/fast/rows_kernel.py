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


@triton.jit
def stream_body(
    x_ptr,  # (M, K), rows contiguous, row stride K
    w_ptr,  # (N, K), rows contiguous
    y_ptr,  # (SLOTS, M, N) float32 partial sums
    M,
    N,
    K,
    PROGRAMS,
    SLOTS,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_M: tl.constexpr,
    PDL: tl.constexpr,
):
    """The same product with the work split evenly over PROGRAMS programs (one or a few an SM,
    so no last wave): the (row block, column step) units in row-block order, program p taking
    units [p U / P, (p + 1) U / P). A row block shared by several programs gets one slot of
    partial sums from each, in program order; the program that ends a block zeroes its unused
    slots, so the consumer's sum over SLOTS is the product, in an order fixed by the shapes."""
    steps = tl.cdiv(K, BLOCK_K)
    units = tl.cdiv(N, BLOCK_N) * steps
    pid = tl.program_id(0)
    u0 = pid * units // PROGRAMS
    u1 = (pid + 1) * units // PROGRAMS
    m = tl.arange(0, BLOCK_M)
    m_ok = m < M
    if PDL:
        gdc_wait()
        gdc_launch_dependents()
    acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    for u in range(u0, u1):
        block = u // steps
        step = u - block * steps
        n = block * BLOCK_N + tl.arange(0, BLOCK_N)
        n_ok = n < N
        k = step * BLOCK_K + tl.arange(0, BLOCK_K)
        k_ok = k < K
        w = tl.load(w_ptr + n[:, None] * K + k[None, :], mask=n_ok[:, None] & k_ok[None, :], other=0.0)
        xt = tl.load(x_ptr + m[None, :] * K + k[:, None], mask=m_ok[None, :] & k_ok[:, None], other=0.0)
        acc = tl.dot(w, xt, acc)  # (BLOCK_N, BLOCK_M) += (BLOCK_N, BLOCK_K) @ (BLOCK_K, BLOCK_M)
        if (step == steps - 1) | (u == u1 - 1):  # this program's share of the block is done
            first = ((block * steps + 1) * PROGRAMS - 1) // units  # the program holding its step 0
            slot = pid - first
            out = y_ptr + m[None, :] * N + n[:, None]  # y[slot, m, n] = acc[n, m]
            tl.store(out + slot * M * N, acc, mask=n_ok[:, None] & m_ok[None, :])
            if step == steps - 1:  # the block's last share: its later slots stay zero
                for rest in range(slot + 1, SLOTS):
                    tl.store(out + rest * M * N, tl.zeros_like(acc), mask=n_ok[:, None] & m_ok[None, :])
            acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)


def stream_slots(n: int, k: int, config: dict) -> int:
    """The most programs that share one row block under stream_body's split: the parts' count."""
    steps, programs = -(-k // config["BLOCK_K"]), config["PROGRAMS"]
    units = -(-n // config["BLOCK_N"]) * steps
    owner = lambda u: ((u + 1) * programs - 1) // units  # noqa: E731
    return max(owner(b * steps + steps - 1) - owner(b * steps) + 1 for b in range(units // steps))


def stream_launch(x: torch.Tensor, weight: torch.Tensor, config: dict, pdl: bool = False) -> torch.Tensor:
    """x (M, K) @ weight (N, K).T as (SLOTS, M, N) float32 partial sums (stream_slots), over
    config's PROGRAMS programs; config: PROGRAMS, BLOCK_N, BLOCK_K, num_warps, num_stages."""
    (rows, k), n = x.shape, weight.shape[0]
    slots = stream_slots(n, k, config)
    y = x.new_empty(slots, rows, n, dtype=torch.float32)
    meta = {key: v for key, v in config.items() if key != "PROGRAMS"}
    stream_body[(config["PROGRAMS"],)](
        x, weight, y, rows, n, k, config["PROGRAMS"], slots, BLOCK_M=block_m(rows), PDL=pdl, launch_pdl=pdl, **meta
    )
    return y


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
