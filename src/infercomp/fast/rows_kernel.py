"""The Triton kernel behind fast/rows.py: the products of a few input rows (M = 2..64: a batch's
decode step, beams, a verify block) with fast/gemv_kernel.py's prologues and residual epilogue.

At 32 rows a decode step still reads each weight once and does little arithmetic per byte, but
cuBLAS's kernels for x @ W.T at M = 32 leave bandwidth unused (Qwen3-4B's gate|up: 192-row tiles,
101 thread blocks for 132 SMs; the o and down products split over K with a separate reduction
kernel), and the norms, the activation and the residual adds are five more kernels per layer.

Here the weight is the tensor cores' left operand: one program per BLOCK_N weight rows (and 1/SPLIT
of the columns) multiplies its (BLOCK_N, BLOCK_K) tiles by the prologue-transformed input tile
(BLOCK_K, BLOCK_M), BLOCK_M = M padded to 16 or more, so the tiles stay full at any row count.
Column splits reduce as gemv_kernel's do: float32 partials, the last program of a row block adds
them in split order.

Imported only where Triton is installed; the interpreter (TRITON_INTERPRET=1) runs it on CPU.
"""

import os

import torch
import triton
import triton.language as tl

from infercomp.fast.gemv_kernel import MAX_SPLIT, await_inputs, column_span, counts, finish_rows, input_at, pdl

MAX_ROWS = 64  # more rows go to cuBLAS (a prefill's block): the tiles here are for few rows


def _config(block_n, block_k, stages, split=1, warps=4):
    meta = {"BLOCK_N": block_n, "BLOCK_K": block_k, "SPLIT": split}
    return triton.Config(meta, num_warps=warps, num_stages=stages)


configs = [_config(bn, bk, s) for bn in (32, 64, 128) for bk in (64, 128) for s in (3, 4)]
configs += [_config(bn, 128, 4, split) for bn in (64, 128) for split in (2, 4)]
if os.environ.get("TRITON_INTERPRET") == "1":  # the CPU interpreter: one config, no timing
    configs = configs[:1]


def prune(configs, named_args, **_):
    """Column splits only where row blocks alone are too few to fill the GPU: matrices of fewer
    than 8,192 rows (at 64 rows a block, fewer than 128 programs)."""
    return [c for c in configs if c.kwargs["SPLIT"] == 1 or named_args["N"] < 8192]


@triton.jit
def token_scales(x_rows, tok_ok, K, eps, PROLOGUE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
    """RMSNORM's 1 / rms of each input row, (BLOCK_M, 1) (x_rows: (BLOCK_M, 1) row pointers); 1
    otherwise."""
    scale = 1.0
    if PROLOGUE == 1:
        squares = tl.zeros([BLOCK_M, BLOCK_K], dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            cols = k0 + tl.arange(0, BLOCK_K)
            v = tl.load(x_rows + cols[None, :], mask=tok_ok[:, None] & (cols < K)[None, :], other=0.0)
            squares += v.to(tl.float32) * v.to(tl.float32)
        scale = tl.rsqrt(tl.sum(squares, axis=1) / K + eps)[:, None]
    return scale


@triton.jit
def rows_body(
    x_ptr,  # (M, K), or (M, 2K) = [g | u] rows for SILU
    norm_ptr,  # (K,) RMSNORM's weight; unused otherwise
    w_ptr,  # (N, K), rows contiguous
    res_ptr,  # (M, N) residual; unused unless RESIDUAL
    y_ptr,  # (M, N)
    part_ptr,  # (SPLIT, M, N) float32 partial sums; unused when SPLIT == 1
    count_ptr,  # (cdiv(N, BLOCK_N),) int32 arrival counts; unused when SPLIT == 1
    M,
    N,
    K,
    eps,
    PROLOGUE: tl.constexpr,
    RESIDUAL: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    SPLIT: tl.constexpr,
    PRECISION: tl.constexpr,  # "ieee" for float32 (exact products, not TF32)
    PDL: tl.constexpr,
):
    dtype = y_ptr.dtype.element_ty
    outs = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)  # this program's weight rows
    out_ok = outs < N
    toks = tl.arange(0, BLOCK_M)  # input rows; those past M are zeros and never stored
    tok_ok = toks < M
    row_len = K
    if PROLOGUE == 2:
        row_len = 2 * K
    x_rows = x_ptr + toks[:, None] * row_len  # (BLOCK_M, 1)
    w_at = w_ptr + outs[:, None] * K  # (BLOCK_N, 1); int32 offsets: rows.serves() checks the size
    lo, hi = column_span(K, SPLIT, BLOCK_K)
    await_inputs(PDL)
    scale = token_scales(x_rows, tok_ok, K, eps, PROLOGUE, BLOCK_M, BLOCK_K)  # whole rows, whatever the split
    acc = tl.zeros([BLOCK_N, BLOCK_M], dtype=tl.float32)
    for k0 in range(lo, hi, BLOCK_K):
        cols = k0 + tl.arange(0, BLOCK_K)
        col_ok = cols < hi
        # (BLOCK_M, BLOCK_K) columns for every input row: the norm weight's load takes the full shape
        cols_2d = tl.broadcast_to(cols[None, :], (BLOCK_M, BLOCK_K))
        v = input_at(x_rows, norm_ptr, cols_2d, tok_ok[:, None] & col_ok[None, :], K, scale, dtype, PROLOGUE)
        w = tl.load(w_at + cols[None, :], mask=out_ok[:, None] & col_ok[None, :], other=0.0)  # (BLOCK_N, BLOCK_K)
        acc = tl.dot(w, tl.trans(v.to(dtype)), acc, input_precision=PRECISION)  # (BLOCK_N, BLOCK_M)
    offsets = toks[None, :] * N + outs[:, None]  # y[m, n] for acc[n, m]
    ok = out_ok[:, None] & tok_ok[None, :]
    finish_rows(acc, res_ptr, y_ptr, part_ptr, count_ptr, offsets, ok, M * N, dtype, RESIDUAL, SPLIT)


rows_kernel = triton.autotune(configs=configs, key=["N", "K", "PROLOGUE", "RESIDUAL", "BLOCK_M"],
                              prune_configs_by={"early_config_prune": prune})(rows_body)  # fmt: skip


def block_rows(m: int) -> int:
    """M padded to the tensor cores' 16 rows or the next power of two."""
    return max(16, triton.next_power_of_2(m))


def launch(x, weight, norm, residual, eps, prologue, config=None):
    """y = prologue(x) @ weight.T (+ residual): x (M, K) or (M, 2K), residual (M, N) -> (M, N).
    `config`: fixed meta-parameters (BLOCK_N, BLOCK_K, SPLIT, num_warps, num_stages) instead of
    the autotuned choice (benchmarks, tests)."""
    m, (n, k) = x.shape[0], weight.shape
    assert m <= MAX_ROWS
    y = x.new_empty(m, n)
    may_split = config is None or config.get("SPLIT", 1) > 1
    part = torch.empty(MAX_SPLIT * m * n if may_split else 1, dtype=torch.float32, device=x.device)
    grid = lambda meta: (triton.cdiv(n, meta["BLOCK_N"]), meta["SPLIT"])  # noqa: E731
    args = (x, x if norm is None else norm, weight, y if residual is None else residual, y, part, counts(x.device))
    kernel = rows_kernel if config is None else rows_body
    use_pdl = pdl(x.device)
    precision = "ieee" if x.dtype == torch.float32 else "tf32"
    kernel[grid](*args, m, n, k, eps, PROLOGUE=prologue, RESIDUAL=residual is not None, BLOCK_M=block_rows(m),
                 PRECISION=precision, PDL=use_pdl, launch_pdl=use_pdl, **(config or {}))  # fmt: skip
    return y
