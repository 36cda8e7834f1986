"""The Triton kernel behind fast/gemv.py: one program per BLOCK_N rows of the weight matrix,
streaming them in BLOCK_K-column steps against the (prologue-transformed) input row.

Imported only where Triton is installed; the interpreter (TRITON_INTERPRET=1) runs it on CPU.
"""

import os

import triton
import triton.language as tl

# Block sizes: BLOCK_N weight rows per program, BLOCK_K columns per step of its loop. A
# short list timed once per (N, K, prologue): every entry streams whole 256- or 512-element
# runs of a row (512 B or 1 KB in bf16), so all are near the bandwidth and the choice
# between them is stable.
configs = [
    triton.Config({"BLOCK_N": bn, "BLOCK_K": bk}, num_warps=w, num_stages=s)
    for bn in (4, 8, 16)
    for bk in (256, 512)
    for w in (4, 8)
    for s in (2, 4)
]
if os.environ.get("TRITON_INTERPRET") == "1":  # the CPU interpreter: one config, no timing
    configs = configs[:1]


@triton.jit
def row_scale(x_ptr, K, eps, PROLOGUE: tl.constexpr, BLOCK_K: tl.constexpr):
    """RMSNORM's 1 / rms of the input row (K values, read by every program from L2); 1 otherwise."""
    scale = 1.0
    if PROLOGUE == 1:
        squares = tl.zeros([BLOCK_K], dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            cols = k0 + tl.arange(0, BLOCK_K)
            v = tl.load(x_ptr + cols, mask=cols < K, other=0.0).to(tl.float32)
            squares += v * v
        scale = tl.rsqrt(tl.sum(squares, axis=0) / K + eps)
    return scale


@triton.jit
def input_at(x_ptr, norm_ptr, cols, col_ok, K, scale, dtype: tl.constexpr, PROLOGUE: tl.constexpr):
    """The prologue-transformed input at columns `cols`, float32, rounded through the model dtype
    where the unfused reference rounds: rms_norm(x) * norm, silu(g) * u (x = [g | u]), or x."""
    if PROLOGUE == 2:
        g = tl.load(x_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
        u = tl.load(x_ptr + K + cols, mask=col_ok, other=0.0).to(tl.float32)
        act = (g * tl.sigmoid(g)).to(dtype).to(tl.float32)
        v = (act * u).to(dtype).to(tl.float32)
    else:
        v = tl.load(x_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
        if PROLOGUE == 1:
            nw = tl.load(norm_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
            v = (nw * (v * scale).to(dtype).to(tl.float32)).to(dtype).to(tl.float32)
    return v


@triton.jit
def store_rows(y, res_ptr, y_ptr, rows, row_ok, dtype: tl.constexpr, RESIDUAL: tl.constexpr):
    """The epilogue: y (BLOCK_N,) in the model dtype, plus the residual if RESIDUAL (the sum
    rounded to the model dtype, as the unfused add rounds), stored at `rows`."""
    if RESIDUAL:
        r = tl.load(res_ptr + rows, mask=row_ok, other=0.0).to(tl.float32)
        y = (y.to(tl.float32) + r).to(dtype)
    tl.store(y_ptr + rows, y, mask=row_ok)


@triton.autotune(configs=configs, key=["N", "K", "PROLOGUE", "RESIDUAL"])
@triton.jit
def gemv_kernel(
    x_ptr,  # (K,), or (2K,) = [g | u] for SILU
    norm_ptr,  # (K,) RMSNORM's weight; unused otherwise
    w_ptr,  # (N, K), rows contiguous
    res_ptr,  # (N,) residual; unused unless RESIDUAL
    y_ptr,  # (N,)
    N,
    K,
    eps,
    PROLOGUE: tl.constexpr,
    RESIDUAL: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    dtype = y_ptr.dtype.element_ty
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    scale = row_scale(x_ptr, K, eps, PROLOGUE, BLOCK_K)
    acc = tl.zeros([BLOCK_N, BLOCK_K], dtype=tl.float32)  # reduced once, after the loop
    for k0 in range(0, K, BLOCK_K):
        cols = k0 + tl.arange(0, BLOCK_K)
        col_ok = cols < K
        v = input_at(x_ptr, norm_ptr, cols, col_ok, K, scale, dtype, PROLOGUE)
        # int32 offsets: serves() keeps weights of 2^31 elements or more on the plain path
        w = tl.load(w_ptr + rows[:, None] * K + cols[None, :], mask=row_ok[:, None] & col_ok[None, :], other=0.0)
        acc += w.to(tl.float32) * v[None, :]
    y = tl.sum(acc, axis=1).to(dtype)
    store_rows(y, res_ptr, y_ptr, rows, row_ok, dtype, RESIDUAL)


def launch(x, weight, norm, residual, eps, prologue):
    n, k = weight.shape
    y = x.new_empty(n)
    grid = lambda meta: (triton.cdiv(n, meta["BLOCK_N"]),)  # noqa: E731
    gemv_kernel[grid](
        x,
        x if norm is None else norm,
        weight,
        y if residual is None else residual,
        y,
        n,
        k,
        eps,
        PROLOGUE=prologue,
        RESIDUAL=residual is not None,
    )
    return y
