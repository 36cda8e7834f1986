"""The Triton kernel behind fast/gemv.py: one program per BLOCK_N rows of the weight matrix and
1/SPLIT of its columns, streaming them in BLOCK_K-column steps against the (prologue-transformed)
input row.

Why split the columns: a matrix with few rows (Qwen3-4B's down projection, 2,560 x 9,728) gives
few programs, each streaming a long run of bytes, and the last wave of programs leaves most of the
GPU idle. With SPLIT > 1 each row block's columns are shared by SPLIT programs; each stores its
float32 partial sums, and the last of them to finish (an atomic count per row block) adds the
partials in split order, so the result does not depend on which program finished last.

Imported only where Triton is installed; the interpreter (TRITON_INTERPRET=1) runs it on CPU.
"""

import os

import torch
import triton
import triton.language as tl
from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait

# Block sizes: BLOCK_N weight rows per program, BLOCK_K columns per step of its loop. A
# short list timed once per (N, K, prologue): rows longer than WHOLE_ROW are streamed in 256- or
# 512-element runs (512 B or 1 KB in bf16), so all candidates are near the bandwidth and the
# choice between them is stable; shorter rows are taken whole (prune_plain). Matrices of fewer
# than SPLIT_ROWS rows also try column splits.
MAX_SPLIT = 8
SPLIT_ROWS = 4096


def _config(block_n, block_k, warps, stages, split=1):
    meta = {"BLOCK_N": block_n, "BLOCK_K": block_k, "SPLIT": split}
    return triton.Config(meta, num_warps=warps, num_stages=stages)


configs = [_config(bn, bk, w, s) for bn in (4, 8, 16) for bk in (256, 512) for w in (4, 8) for s in (2, 4)]
configs += [_config(bn, 512, 4, 3, split) for bn in (4, 8) for split in (2, 4, 8)]
# Whole rows in one tile, for rows of at most WHOLE_ROW columns (Qwen3-0.6B's q|k|v, o, gate|up):
# each program holds its whole share of the weight before it waits for the kernel before it, so
# after the wait only the input row is read. Measured on an H100 in one process: Qwen3-0.6B's
# step 0.949 -> 0.925 ms (docs/measurements/2026-11-27-h100-rows-prefetch/call-3-tiles).
WHOLE_ROW = 2048
configs += [_config(bn, bk, w, 2) for bn in (1, 2, 4) for bk in (1024, 2048) for w in (4, 8)]
if os.environ.get("TRITON_INTERPRET") == "1":  # the CPU interpreter: one config, no timing
    configs = configs[:1]


def prune(configs, named_args, **_):
    """Column splits only for matrices of few, long rows (the down projections): timed with the
    weights streamed from memory on an H100 they won only there; on the o projection
    (2,560 x 4,096) every split lost to the unsplit blocks, which the autotuner did not always
    see (benchmarks/gemv_splits.py)."""
    n, k = named_args["N"], named_args["K"]
    return [c for c in configs if c.kwargs["SPLIT"] == 1 or (n < SPLIT_ROWS and k >= 2 * n)]


def prune_plain(configs, named_args, **kw):
    """The plain kernel's candidates: rows of at most WHOLE_ROW columns in one tile (BLOCK_K the
    row padded to a power of two), longer rows in 256- or 512-column steps (prune)."""
    k = named_args["K"]
    kept = prune(configs, named_args, **kw)  # column splits only where prune allows them
    whole = [c for c in kept if c.kwargs["BLOCK_K"] == triton.next_power_of_2(k) and c.kwargs["SPLIT"] == 1]
    return (whole if k <= WHOLE_ROW else []) or [c for c in kept if c.kwargs["BLOCK_K"] <= 512]


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


@triton.jit
def await_inputs(PDL: tl.constexpr):
    """With programmatic dependent launch (PDL), this kernel's programs start while the kernel
    before it finishes: what they load before this call (weights) must not depend on it; from
    here on its outputs are complete and visible. Then the kernel after this one may start its
    own programs (its loads before its await_inputs overlap this kernel's tail)."""
    if PDL:
        gdc_wait()
        gdc_launch_dependents()


@triton.jit
def column_span(K, SPLIT: tl.constexpr, BLOCK_K: tl.constexpr):
    """This program's columns [lo, hi): its share of K, a whole number of BLOCK_K steps."""
    span = tl.cdiv(tl.cdiv(K, SPLIT), BLOCK_K) * BLOCK_K
    lo = tl.program_id(1) * span
    return lo, tl.minimum(lo + span, K)


@triton.jit
def finish_rows(part, res_ptr, y_ptr, part_ptr, count_ptr, rows, row_ok, N, dtype: tl.constexpr,
                RESIDUAL: tl.constexpr, SPLIT: tl.constexpr):  # fmt: skip
    """The epilogue of a program's float32 sums `part` (BLOCK_N,) over its columns. SPLIT == 1:
    they are the rows' products; store them. Otherwise store them in part_ptr (SPLIT, N); the
    last program of the row block to arrive adds the SPLIT partials in order, stores, and resets
    the block's count (count_ptr: int32 zeros, one per row block, zero again after every call)."""
    if SPLIT == 1:
        store_rows(part.to(dtype), res_ptr, y_ptr, rows, row_ok, dtype, RESIDUAL)
    else:
        tl.store(part_ptr + tl.program_id(1) * N + rows, part, mask=row_ok)
        tl.debug_barrier()  # all of this program's partials stored before the count releases them
        arrived = tl.atomic_add(count_ptr + tl.program_id(0), 1, sem="acq_rel", scope="gpu")
        if arrived == SPLIT - 1:
            total = tl.zeros_like(part)
            for s in tl.static_range(SPLIT):  # ".cg": read at L2, where the other programs wrote
                total += tl.load(part_ptr + s * N + rows, mask=row_ok, other=0.0, cache_modifier=".cg")
            store_rows(total.to(dtype), res_ptr, y_ptr, rows, row_ok, dtype, RESIDUAL)
            tl.atomic_xchg(count_ptr + tl.program_id(0), 0)


@triton.jit
def gemv_body(
    x_ptr,  # (K,), or (2K,) = [g | u] for SILU
    norm_ptr,  # (K,) RMSNORM's weight; unused otherwise
    w_ptr,  # (N, K), rows contiguous
    res_ptr,  # (N,) residual; unused unless RESIDUAL
    y_ptr,  # (N,)
    part_ptr,  # (SPLIT, N) float32 partial sums; unused when SPLIT == 1
    count_ptr,  # (cdiv(N, BLOCK_N),) int32 arrival counts; unused when SPLIT == 1
    N,
    K,
    eps,
    PROLOGUE: tl.constexpr,
    RESIDUAL: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    SPLIT: tl.constexpr,
    PDL: tl.constexpr,
):
    dtype = y_ptr.dtype.element_ty
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    lo, hi = column_span(K, SPLIT, BLOCK_K)
    # int32 offsets: serves() keeps weights of 2^31 elements or more on the plain path
    w_at = w_ptr + rows[:, None] * K
    cols = lo + tl.arange(0, BLOCK_K)
    col_ok = cols < hi
    w = tl.load(w_at + cols[None, :], mask=row_ok[:, None] & col_ok[None, :], other=0.0)  # before the wait
    await_inputs(PDL)
    scale = row_scale(x_ptr, K, eps, PROLOGUE, BLOCK_K)  # over the whole row, whatever the split
    acc = w.to(tl.float32) * input_at(x_ptr, norm_ptr, cols, col_ok, K, scale, dtype, PROLOGUE)[None, :]
    for k0 in range(lo + BLOCK_K, hi, BLOCK_K):  # acc: reduced once, after the loop
        cols = k0 + tl.arange(0, BLOCK_K)
        col_ok = cols < hi
        v = input_at(x_ptr, norm_ptr, cols, col_ok, K, scale, dtype, PROLOGUE)
        w = tl.load(w_at + cols[None, :], mask=row_ok[:, None] & col_ok[None, :], other=0.0)
        acc += w.to(tl.float32) * v[None, :]
    finish_rows(tl.sum(acc, axis=1), res_ptr, y_ptr, part_ptr, count_ptr, rows, row_ok, N, dtype, RESIDUAL, SPLIT)


gemv_kernel = triton.autotune(configs=configs, key=["N", "K", "PROLOGUE", "RESIDUAL"],
                              prune_configs_by={"early_config_prune": prune_plain})(gemv_body)  # fmt: skip

COUNTS = SPLIT_ROWS  # row blocks a split launch may have (N < SPLIT_ROWS rows, BLOCK_N >= 1)
_counts: dict[torch.device, torch.Tensor] = {}


def counts(device: torch.device) -> torch.Tensor:
    """The arrival counts of split launches on `device`: zeros, allocated once (before any CUDA
    graph capture: fast.gemv.prepare calls this), left at zero by every launch. Launches on one
    stream run one after another, so one set serves them all."""
    if device.type == "cuda" and device.index is None:  # one set per GPU, however it is named
        device = torch.device("cuda", torch.cuda.current_device())
    if device not in _counts:
        _counts[device] = torch.zeros(COUNTS, dtype=torch.int32, device=device)
    return _counts[device]


def partials(n: int, device: torch.device, may_split: bool | None = None) -> torch.Tensor:
    """The (MAX_SPLIT, n) float32 partial sums of a launch that may split (by default: the
    autotuner may pick a split for n rows, see prune), else a placeholder."""
    may_split = n < SPLIT_ROWS if may_split is None else may_split
    return torch.empty(MAX_SPLIT * n if may_split else 1, dtype=torch.float32, device=device)


def pdl(device: torch.device) -> bool:
    """Whether launches on `device` use programmatic dependent launch: CUDA devices of compute
    capability 9 (Hopper) and later, unless INFERCOMP_PDL=0 (the knob that measures what it buys)."""
    if device.type != "cuda" or os.environ.get("INFERCOMP_PDL", "1") == "0":
        return False
    if device not in _hopper:
        _hopper[device] = torch.cuda.get_device_capability(device)[0] >= 9
    return _hopper[device]


_hopper: dict[torch.device, bool] = {}


def launch(x, weight, norm, residual, eps, prologue, config=None):
    """y = prologue(x) @ weight.T (+ residual), (N,). `config`: fixed meta-parameters
    (BLOCK_N, BLOCK_K, SPLIT, num_warps, num_stages) instead of the autotuned choice (benchmarks)."""
    n, k = weight.shape
    assert config is None or config.get("SPLIT", 1) == 1 or triton.cdiv(n, config["BLOCK_N"]) <= COUNTS
    y = x.new_empty(n)
    part = partials(n, x.device, None if config is None else config.get("SPLIT", 1) > 1)
    grid = lambda meta: (triton.cdiv(n, meta["BLOCK_N"]), meta["SPLIT"])  # noqa: E731
    args = (x, x if norm is None else norm, weight, y if residual is None else residual, y, part, counts(x.device))
    kernel = gemv_kernel if config is None else gemv_body
    use_pdl = pdl(x.device)
    kernel[grid](*args, n, k, eps, PROLOGUE=prologue, RESIDUAL=residual is not None, PDL=use_pdl,
                 launch_pdl=use_pdl, **(config or {}))  # fmt: skip
    return y
