"""The Triton kernels behind fast/packed.py: products with int8 and int4 weights (formats there).

  gemv  one input row; fast.gemv's prologues (rmsnorm, silu * up) and residual epilogue. One
        program per BLOCK_N weight rows. int8: the row scale applies once, after the reduction.
        int4: one group of G bytes per row per loop step, so each step needs one scale and one
        minimum per row; the step's bytes feed columns j (low nibble) and j + K/2 (high nibble).
  mm    several rows (a batch, a verify pass, a prefill): a BLOCK_M x BLOCK_N tile per program;
        each step dequantizes a weight block into the model dtype in registers and multiplies on
        the tensor cores (IEEE float32 products for float32 models, so they stay exact).

Imported only where Triton is installed; the interpreter (TRITON_INTERPRET=1) runs it on CPU.
Offsets: the one-row kernels index 32-bit words in int32 (a weight would need more than 2^31
words, 8 GB, to overflow); the row kernels widen their row indices to int64 before multiplying
by a row length (a prefill of many long rows can hold more than 2^31 elements of x or y).
"""

import os

import torch
import triton
import triton.language as tl

from infercomp.fast.gemv_kernel import (
    await_inputs,
    column_span,
    counts,
    finish_rows,
    input_at,
    partials,
    pdl,
    prune,
    row_scale,
    store_rows,
)

INTERPRETING = os.environ.get("TRITON_INTERPRET") == "1"


def _configs(entries):
    """Autotune candidates from (meta-parameters, warps) pairs. Few on purpose: the autotuner
    compiles every candidate for every shape before a first call (about a second each on the
    GPU machine), and 24 per shape put a packed model's first call past a minute."""
    out = [triton.Config(meta, num_warps=w, num_stages=3) for meta, w in entries]
    return out[:1] if INTERPRETING else out  # the CPU interpreter: one config, no timing


# BLOCK_W 32-bit words of a row per step (4 int8 or 8 int4 weights a word) over BLOCK_N rows;
# int8 also tries column splits on matrices of few rows (fast.gemv_kernel: SPLIT, prune).
INT8_GEMV = [({"BLOCK_N": 4, "BLOCK_W": 256, "SPLIT": 1}, 4), ({"BLOCK_N": 8, "BLOCK_W": 256, "SPLIT": 1}, 8),
             ({"BLOCK_N": 2, "BLOCK_W": 512, "SPLIT": 1}, 4), ({"BLOCK_N": 4, "BLOCK_W": 512, "SPLIT": 1}, 8),
             ({"BLOCK_N": 4, "BLOCK_W": 128, "SPLIT": 2}, 4), ({"BLOCK_N": 4, "BLOCK_W": 128, "SPLIT": 4}, 4),
             ({"BLOCK_N": 8, "BLOCK_W": 128, "SPLIT": 4}, 4)]  # fmt: skip
INT4_GEMV = [({"BLOCK_N": 4, "BLOCK_W": 128}, 4), ({"BLOCK_N": 8, "BLOCK_W": 128}, 4),
             ({"BLOCK_N": 4, "BLOCK_W": 256}, 8), ({"BLOCK_N": 8, "BLOCK_W": 256}, 8)]  # fmt: skip
MAGIC = tl.constexpr(8388608.0)  # 2^23: a float32 with bits 0x4B000000 | u (u < 2^23) is exactly 2^23 + u


@triton.jit
def small_int_as_float(u):
    """u (int32, 0 <= u < 2^23) as float32 without a conversion instruction (those run at a
    quarter of the rate of plain arithmetic): set the exponent bits and subtract 2^23, exact."""
    return (u | 0x4B000000).to(tl.float32, bitcast=True) - MAGIC


@triton.jit
def int8_step(w, x_ptr, norm_ptr, t, ok, K, scale, dtype: tl.constexpr, PROLOGUE: tl.constexpr):
    """One step's products: words w (BLOCK_N, BLOCK_W) at word indices t, word t holding columns
    4t .. 4t + 3 one per byte, against the prologue-transformed input: (BLOCK_N, BLOCK_W) float32."""
    acc = tl.zeros(w.shape, dtype=tl.float32)
    for i in tl.static_range(4):
        v = input_at(x_ptr, norm_ptr, 4 * t + i, ok, K, scale, dtype, PROLOGUE)
        u = ((w >> (8 * i)) & 0xFF) ^ 0x80  # the signed code + 128, in the low byte
        code = (u | 0x4B000000).to(tl.float32, bitcast=True) - (MAGIC + 128.0)  # exact, see small_int_as_float
        acc += code * v[None, :]
    return acc


@triton.autotune(configs=_configs(INT8_GEMV), key=["N", "K", "PROLOGUE", "RESIDUAL"],
                 prune_configs_by={"early_config_prune": prune})  # fmt: skip
@triton.jit
def int8_gemv_kernel(
    x_ptr, norm_ptr, w_ptr, s_ptr, res_ptr, y_ptr,  # x (K,) or (2K,); w (N, K/4) int32 words; s (N,)
    part_ptr, count_ptr, N, K, eps,  # column splits' partial sums and counts (fast.gemv_kernel)
    PROLOGUE: tl.constexpr, RESIDUAL: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr,
    SPLIT: tl.constexpr, PDL: tl.constexpr,
):  # fmt: skip
    dtype = y_ptr.dtype.element_ty
    words = K // 4
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)  # int32: rows x words < 2^31 (see above)
    row_ok = rows < N
    lo, hi = column_span(words, SPLIT, BLOCK_W)
    w_at = w_ptr + rows[:, None] * words
    t = lo + tl.arange(0, BLOCK_W)
    w = tl.load(w_at + t[None, :], mask=row_ok[:, None] & (t < hi)[None, :], other=0)  # before the wait
    await_inputs(PDL)
    scale = row_scale(x_ptr, K, eps, PROLOGUE, BLOCK_W)
    acc = int8_step(w, x_ptr, norm_ptr, t, t < hi, K, scale, dtype, PROLOGUE)
    for t0 in range(lo + BLOCK_W, hi, BLOCK_W):
        t = t0 + tl.arange(0, BLOCK_W)
        w = tl.load(w_at + t[None, :], mask=row_ok[:, None] & (t < hi)[None, :], other=0)
        acc += int8_step(w, x_ptr, norm_ptr, t, t < hi, K, scale, dtype, PROLOGUE)
    s = tl.load(s_ptr + rows, mask=row_ok, other=0.0).to(tl.float32)
    finish_rows(tl.sum(acc, axis=1) * s, res_ptr, y_ptr, part_ptr, count_ptr, rows, row_ok, N, dtype, RESIDUAL, SPLIT)


@triton.autotune(configs=_configs(INT4_GEMV), key=["N", "HALF", "PROLOGUE", "RESIDUAL"])
@triton.jit
def int4_gemv_kernel(
    x_ptr, norm_ptr, w_ptr, s_ptr, lo_ptr, res_ptr, y_ptr,  # w (N, K/8) int32 words; s, lo (N, K/G)
    N, HALF, GROUPS, eps,  # HALF = K/2, the codes' row stride in bytes
    G: tl.constexpr, PROLOGUE: tl.constexpr, RESIDUAL: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr,
):  # fmt: skip
    dtype = y_ptr.dtype.element_ty
    K = 2 * HALF
    words = HALF // 4
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)  # int32: rows x words < 2^31 (see above)
    row_ok = rows < N
    scale = row_scale(x_ptr, K, eps, PROLOGUE, BLOCK_W)
    acc = tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.float32)
    for t0 in range(0, words, BLOCK_W):
        t = t0 + tl.arange(0, BLOCK_W)  # byte i of word t: column 4t + i (low nibble), 4t + i + K/2 (high)
        ok = t < words
        both = row_ok[:, None] & ok[None, :]
        w = tl.load(w_ptr + rows[:, None] * words + t[None, :], mask=both, other=0)
        # the four columns of a word share a group (4 divides G): one scale and minimum per word
        g = rows[:, None] * GROUPS + (4 * t // G)[None, :]
        s_lo = tl.load(s_ptr + g, mask=both, other=0.0).to(tl.float32)
        m_lo = tl.load(lo_ptr + g, mask=both, other=0.0).to(tl.float32)
        s_hi = tl.load(s_ptr + g + HALF // G, mask=both, other=0.0).to(tl.float32)
        m_hi = tl.load(lo_ptr + g + HALF // G, mask=both, other=0.0).to(tl.float32)
        for i in tl.static_range(4):
            v_lo = input_at(x_ptr, norm_ptr, 4 * t + i, ok, K, scale, dtype, PROLOGUE)
            v_hi = input_at(x_ptr, norm_ptr, 4 * t + i + HALF, ok, K, scale, dtype, PROLOGUE)
            q_lo = small_int_as_float((w >> (8 * i)) & 15)
            q_hi = small_int_as_float((w >> (8 * i + 4)) & 15)
            acc += (q_lo * s_lo + m_lo) * v_lo[None, :] + (q_hi * s_hi + m_hi) * v_hi[None, :]
    y = tl.sum(acc, axis=1).to(dtype)
    store_rows(y, res_ptr, y_ptr, rows, row_ok, dtype, RESIDUAL)


def _mm_configs(block_k=None):
    extra = {} if block_k is None else {"BLOCK_K": block_k}
    tiles = [(16, 64), (16, 128), (64, 64)]  # (BLOCK_M, BLOCK_N): decode batches, then prompts
    return _configs([({"BLOCK_M": bm, "BLOCK_N": bn, **extra}, 4) for bm, bn in tiles])


@triton.jit
def _dot(a, b, F32: tl.constexpr):
    if F32:
        return tl.dot(a, b, input_precision="ieee")
    return tl.dot(a, b)


@triton.autotune(configs=_mm_configs(64), key=["N", "K", "M_BUCKET"])
@triton.jit
def int8_mm_kernel(
    x_ptr, w_ptr, s_ptr, y_ptr, M, N, K, M_BUCKET,  # x (M, K); w (N, K) int8; s (N,); y (M, N)
    F32: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    dtype = y_ptr.dtype.element_ty
    m = (tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
    n = (tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)).to(tl.int64)
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        x = tl.load(x_ptr + m[:, None] * K + k[None, :], mask=(m[:, None] < M) & (k[None, :] < K), other=0.0)
        w = tl.load(w_ptr + n[:, None] * K + k[None, :], mask=(n[:, None] < N) & (k[None, :] < K), other=0)
        acc += _dot(x, tl.trans(w.to(dtype)), F32)  # int8 codes are exact in bf16 and float32
    s = tl.load(s_ptr + n, mask=n < N, other=0.0).to(tl.float32)
    y = (acc * s[None, :]).to(dtype)
    tl.store(y_ptr + m[:, None] * N + n[None, :], y, mask=(m[:, None] < M) & (n[None, :] < N))


@triton.autotune(configs=_mm_configs(), key=["N", "HALF", "M_BUCKET"])
@triton.jit
def int4_mm_kernel(
    x_ptr, w_ptr, s_ptr, lo_ptr, y_ptr, M, N, HALF, GROUPS, M_BUCKET,  # w (N, K/2) uint8; s, lo (N, K/G)
    G: tl.constexpr, F32: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    dtype = y_ptr.dtype.element_ty
    K, half, groups = 2 * HALF, HALF, GROUPS
    m = (tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
    n = (tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)).to(tl.int64)
    m_ok, n_ok = m < M, n < N
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for k0 in range(0, half, G):  # one group of each nibble half per step
        c = k0 + tl.arange(0, G)
        x_lo = tl.load(x_ptr + m[:, None] * K + c[None, :], mask=m_ok[:, None], other=0.0)
        x_hi = tl.load(x_ptr + m[:, None] * K + half + c[None, :], mask=m_ok[:, None], other=0.0)
        b = tl.load(w_ptr + n[:, None] * half + c[None, :], mask=n_ok[:, None], other=0)
        g = n * groups + k0 // G
        s_lo = tl.load(s_ptr + g, mask=n_ok, other=0.0).to(tl.float32)[:, None]
        m_lo = tl.load(lo_ptr + g, mask=n_ok, other=0.0).to(tl.float32)[:, None]
        s_hi = tl.load(s_ptr + g + half // G, mask=n_ok, other=0.0).to(tl.float32)[:, None]
        m_hi = tl.load(lo_ptr + g + half // G, mask=n_ok, other=0.0).to(tl.float32)[:, None]
        w_lo = ((b & 15).to(tl.float32) * s_lo + m_lo).to(dtype)  # (BLOCK_N, G), as dequantize() rounds
        w_hi = ((b >> 4).to(tl.float32) * s_hi + m_hi).to(dtype)
        acc += _dot(x_lo, tl.trans(w_lo), F32)
        acc += _dot(x_hi, tl.trans(w_hi), F32)
    tl.store(y_ptr + m[:, None] * N + n[None, :], acc.to(dtype), mask=m_ok[:, None] & n_ok[None, :])


def gemv(x, codes, scale, low, norm, residual, eps, prologue, bits, group):
    """One row x (K,) or (2K,) -> (N,)."""
    n = codes.shape[0]
    y = x.new_empty(n)
    grid = lambda meta: (triton.cdiv(n, meta["BLOCK_N"]), meta.get("SPLIT", 1))  # noqa: E731
    common = dict(PROLOGUE=prologue, RESIDUAL=residual is not None)
    norm = x if norm is None else norm
    res = y if residual is None else residual
    words = codes.view(torch.int32)  # (N, bytes / 4): packed.pack keeps rows a multiple of 4 bytes
    if bits == 8:
        part = partials(n, x.device)
        use_pdl = pdl(x.device)
        int8_gemv_kernel[grid](x, norm, words, scale, res, y, part, counts(x.device), n, codes.shape[1], eps,
                               PDL=use_pdl, launch_pdl=use_pdl, **common)  # fmt: skip
    else:
        half = codes.shape[1]
        int4_gemv_kernel[grid](x, norm, words, scale, low, res, y, n, half, scale.shape[1], eps, G=group, **common)
    return y


def mm(x, codes, scale, low, bits, group):
    """Rows x (M, K) -> (M, N)."""
    rows, n = x.shape[0], codes.shape[0]
    y = x.new_empty(rows, n)
    grid = lambda meta: (triton.cdiv(rows, meta["BLOCK_M"]), triton.cdiv(n, meta["BLOCK_N"]))  # noqa: E731
    common = dict(M_BUCKET=triton.next_power_of_2(rows), F32=x.dtype == torch.float32)
    if bits == 8:
        int8_mm_kernel[grid](x, codes, scale, y, rows, n, codes.shape[1], **common)
    else:
        int4_mm_kernel[grid](x, codes, scale, low, y, rows, n, codes.shape[1], scale.shape[1], G=group, **common)
    return y
