"""The Triton kernel behind fast/attend.py: attention of one query per row (or, with
fast.attend.BLOCKS, a few) over that row's valid cache slots, one program per (row, kv head)
serving the kv head's group of query heads.

Splitting the slots across programs (flash-decoding: partial results merged by the last split
to finish) was measured on an H100 and lost at these cache sizes (a few hundred slots): 9.3 us per
layer at batch 1 against 6.6 unsplit, the merge of 16-row padded partials costing more than the
parallelism gained. fast.attend therefore serves caches of at most MAX_SLOTS slots only.

Per program: the group's queries q (GP, hd) (GP = queries x group, padded to a power of two of
at least the 16 rows the tensor cores need; padding rows are zeros and never stored), then slots
0..pos in BLOCK_S steps (with several queries a row, each query masked to its own pos): scores
q @ k.T (GP, BLOCK_S), an online softmax (running max m, sum l), and acc += p @ v (GP, hd).
Rounding follows the unfused path where it can: the scores are rounded to the model dtype before
scaling (the unfused product returns the model dtype); the probabilities are rounded to it before
multiplying the values, here relative to the running maximum rather than after normalising.

fresh_kernel does the decode step's whole attention block after the q|k|v product: per program it
takes the new token's query heads and key from that product, applies Qwen3's per-head norms and
the rotary embedding, stores the key and value at the row's new slot, then attends as above. The
same work unfused is two more kernels per layer (norms and rotation of the queries; of the keys
with the cache write), each a gap in the chain of kernels that overlap through PDL.

Imported only where Triton is installed; the interpreter (TRITON_INTERPRET=1) runs it on CPU.
"""

import functools

import torch
import triton
import triton.language as tl

from infercomp.fast.gemv_kernel import await_inputs

# Slots per step of a program's loop. Measured on an H100 in one process (call-3-tiles of
# docs/measurements/2026-11-27-h100-rows-prefetch, prompts of 32 tokens and 128 new ones):
# Qwen3-0.6B's step 1.017 / 0.949 / 0.899 ms at 32 / 64 / 128, Qwen3-4B's 3.598 / 3.513 / 3.470.
# That is for 2-byte dtypes and heads of at most 128; wider elements or heads take
# proportionally fewer, so that a step's keys stay at most 32 KB (128 slots of float32 keys and
# values at hd 128 need 278 KB of shared memory, more than an H100's 227 KB;
# tests/test_kernels_fit_hopper.py compiles every case for sm_90 and checks).
BLOCK_S = 128
# Slots a step and warps a program when the programs (rows x kv heads) outnumber the SMs. At 128
# slots the bf16 kernel took all 255 registers a thread and spilled 568 bytes (Triton's ptxas for
# sm_90, docs/measurements/2026-11-28-h100-partials/ptxas-fresh-kernel.txt); Qwen3-4B at 32 rows
# (256 programs) on one H100: the step 4.281 ms at 128 slots, 4.200 at 64 (that folder, call-2).
# The kernel alone at Qwen3-4B's shapes (benchmarks/attend_bench.py, 36 launches a graph, keys and
# values from memory; docs/measurements/2026-11-28-h100-draw, call-1): at 32 rows 9.97 / 12.78 us
# a launch over 96 / 160 cached slots with 64 slots and 4 warps, 8.66 / 11.63 with 32 slots and
# 2 warps; the step, one process each, 4.263 -> 4.241 ms (call-2) and 4.249 -> 4.213 (call-3):
# each under the 1.1 % noise of one process, the same direction on two machines. Nsight Compute
# on the 64-slot kernel: DRAM at 39 % of its peak, 1.9 programs an SM, 0.26 eligible warps a
# scheduler, stalls mostly on memory latency (the new setting was not profiled). Measured for
# bf16 fresh_kernel only; attend_kernel and float32 take the same setting unmeasured. Batch 1
# (8 programs) keeps BLOCK_S and WARPS.
MANY_PROGRAMS_SLOTS = 32
MANY_PROGRAMS_WARPS = 2
WARPS = 4  # per program
# Software-pipelining stages of the slot loop; None: Triton's default (3 on CUDA). For
# benchmarks/attend_bench.py and the profiler's variants: 1 and 2 measured no better.
STAGES = None
# Whether fresh_kernel asks L2 for the row's cached keys and values (slots before the new one, which
# no kernel of this step writes) before it waits for the q|k|v product, so that the reads overlap
# the product (its programs start early: fast/rows_kernel.py TRIGGER, the one-row kernels' PDL).
# Only where the programs do not outnumber the SMs. Qwen3-4B on one H100, one process, ms a step
# (docs/measurements/2026-11-28-h100-overlap, call-2): batch 1 3.475 -> 3.466, batch 4 (32
# programs) 3.552 -> 3.556, batch 32 (256 programs) 3.900 -> 3.969: there the asks compete with
# the product for memory (an earlier try, 2026-11-27-h100-rows-prefetch: 4.403 -> 4.420).
PREFETCH = True
# At most this many bytes of keys and values asked for by one launch (over all its programs): the
# asks are hints into a 50 MB L2, and were measured only over caches of at most 160 slots (0.65 MB
# at batch 1). Each program asks for its first ASK_BYTES / programs bytes.
ASK_BYTES = 16 << 20


@triton.jit
def _dot(a, b, F32: tl.constexpr):
    if F32:
        return tl.dot(a, b, input_precision="ieee")  # exact float32 products, not TF32
    return tl.dot(a, b)


@triton.jit
def ask_l2(ptr, count, LINES: tl.constexpr):
    """Asks L2 for the `count` contiguous elements at ptr, one 128-byte line an element of a
    LINES-wide step (LINES = the program's threads: one line each). A hint: nothing comes into
    registers and the kernel does not wait for it."""
    per_line = 1024 // ptr.dtype.element_ty.primitive_bitwidth  # elements in 128 bytes
    for first in range(0, count, LINES * per_line):
        at = tl.minimum(first + tl.arange(0, LINES) * per_line, count - 1)
        address = (ptr + at).to(tl.int64)
        # is_pure=False: the compiler keeps the instruction although its dummy result is unused
        tl.inline_asm_elementwise("prefetch.global.L2 [$1];\n\tmov.u32 $0, 0;", "=r,l", [address],
                                  dtype=tl.int32, is_pure=False, pack=1)  # fmt: skip


@triton.jit
def attend_slots(q, k_ptr, v_ptr, base, last, stride_slot, scale, dtype: tl.constexpr,
                 GP: tl.constexpr, HD: tl.constexpr, BLOCK_S: tl.constexpr, F32: tl.constexpr,
                 rows_last=None, PER_ROW: tl.constexpr = False):  # fmt: skip
    """The group's queries q (GP, hd) over slots 0..last at k_ptr/v_ptr + base: (GP, hd) float32.
    PER_ROW: query row r sees slots 0..rows_last[r] only (rows_last (GP,), at most last), as the
    queries of a block of new tokens see the keys up to their own positions."""
    d = tl.arange(0, HD)
    m = tl.full([GP], float("-inf"), dtype=tl.float32)
    total = tl.zeros([GP], dtype=tl.float32)
    acc = tl.zeros([GP, HD], dtype=tl.float32)
    for s0 in range(0, last + 1, BLOCK_S):
        s = s0 + tl.arange(0, BLOCK_S)
        s_ok = s <= last
        slot = base + s[:, None] * stride_slot + d[None, :]
        k = tl.load(k_ptr + slot, mask=s_ok[:, None], other=0.0)  # (BLOCK_S, hd)
        scores = _dot(q, tl.trans(k), F32).to(dtype).to(tl.float32) * scale  # (GP, BLOCK_S)
        if PER_ROW:
            scores = tl.where(s[None, :] <= rows_last[:, None], scores, float("-inf"))
        else:
            scores = tl.where(s_ok[None, :], scores, float("-inf"))
        m_new = tl.maximum(m, tl.max(scores, axis=1))
        alpha = tl.exp(m - m_new)  # 0 on the first step (m = -inf; slot 0 is always valid)
        p = tl.exp(scores - m_new[:, None])
        total = total * alpha + tl.sum(p, axis=1)
        v = tl.load(v_ptr + slot, mask=s_ok[:, None], other=0.0)
        acc = acc * alpha[:, None] + _dot(p.to(dtype), v, F32)
        m = m_new
    return acc / total[:, None]


@triton.jit
def attend_kernel(
    q_ptr,  # (B, QUERIES, heads, hd) contiguous
    k_ptr,  # cache (rows, kv_heads, slots, hd), last dimension contiguous
    v_ptr,
    pos_ptr,  # (B, QUERIES) int64: each query's slot; it attends to slots 0..pos
    out_ptr,  # (B, QUERIES, heads, hd)
    stride_row,
    stride_head,
    stride_slot,
    heads,
    scale,
    GROUPS: tl.constexpr,
    GP: tl.constexpr,
    HD: tl.constexpr,
    BLOCK_S: tl.constexpr,
    F32: tl.constexpr,
    PDL: tl.constexpr,
    QUERIES: tl.constexpr,
):
    """One program per (row, kv head): the QUERIES x GROUPS query heads that share the kv head
    (row r of the program's tile: query r // GROUPS, head r % GROUPS), padded to GP rows."""
    b, kvh = tl.program_id(0), tl.program_id(1)
    dtype = out_ptr.dtype.element_ty
    g = tl.arange(0, GP)
    g_ok = g < QUERIES * GROUPS
    query = g // GROUPS
    d = tl.arange(0, HD)
    at = ((b * QUERIES + query) * heads + kvh * GROUPS + g % GROUPS)[:, None] * HD + d[None, :]  # (GP, hd)
    await_inputs(PDL)
    q = tl.load(q_ptr + at, mask=g_ok[:, None], other=0.0)
    base = b * stride_row + kvh * stride_head
    if QUERIES == 1:
        last = tl.load(pos_ptr + b)
        out = attend_slots(q, k_ptr, v_ptr, base, last, stride_slot, scale, dtype, GP, HD, BLOCK_S, F32)
    else:
        rows_last = tl.load(pos_ptr + b * QUERIES + query, mask=g_ok, other=0)  # (GP,)
        last = tl.max(rows_last, axis=0)
        out = attend_slots(q, k_ptr, v_ptr, base, last, stride_slot, scale, dtype, GP, HD, BLOCK_S, F32,
                           rows_last, True)  # fmt: skip
    tl.store(out_ptr + at, out.to(dtype), mask=g_ok[:, None])


@triton.jit
def _norm_rope(x, partner, w_ptr, cos, sin, eps, dtype: tl.constexpr, NORM: tl.constexpr, HD: tl.constexpr):
    """Heads x (R, hd) and their rotate-half partners (x at (d + hd/2) % hd), float32: the per-head
    RMSNorm (Qwen3's q_norm / k_norm: statistics in float32, the normed value rounded to the model
    dtype, then times the weight, rounded) when NORM, then the rotary embedding with every product
    and the sum rounded to the model dtype, as the unfused eager operations round."""
    d = tl.arange(0, HD)
    partner_d = (d + HD // 2) % HD
    if NORM:
        rstd = tl.rsqrt(tl.sum(x * x, axis=1) / HD + eps)[:, None]  # (R, 1): one per head
        w, w_partner = tl.load(w_ptr + d).to(tl.float32), tl.load(w_ptr + partner_d).to(tl.float32)
        x = (w[None, :] * (x * rstd).to(dtype).to(tl.float32)).to(dtype).to(tl.float32)
        partner = (w_partner[None, :] * (partner * rstd).to(dtype).to(tl.float32)).to(dtype).to(tl.float32)
    sign = tl.where(d < HD // 2, -1.0, 1.0)[None, :]  # rotate-half: (-x2, x1)
    first = (x * cos[None, :]).to(dtype).to(tl.float32)
    second = (sign * partner * sin[None, :]).to(dtype).to(tl.float32)
    return (first + second).to(dtype)


@triton.jit
def fresh_kernel(
    qkv_ptr,  # (B, (heads + 2 kv_heads) hd) contiguous: the q|k|v product of each row's new token
    cos_ptr,  # (B, hd) the rotary tables at each row's position, model dtype
    sin_ptr,
    qn_ptr,  # (hd,) q_norm / k_norm weights; unused unless NORM
    kn_ptr,
    k_ptr,  # cache (rows, kv_heads, slots, hd), last dimension contiguous; slot pos is written
    v_ptr,
    pos_ptr,  # (B,) int64: each row's new slot
    out_ptr,  # (B, heads, hd)
    stride_row,
    stride_head,
    stride_slot,
    heads,
    kv_heads,
    scale,
    eps,
    GROUPS: tl.constexpr,
    GP: tl.constexpr,
    HD: tl.constexpr,
    BLOCK_S: tl.constexpr,
    NORM: tl.constexpr,
    F32: tl.constexpr,
    PDL: tl.constexpr,
    ask_slots=0,  # with PREFETCH: at most this many of the row's cached slots are asked for
    PREFETCH: tl.constexpr = False,
    LINES: tl.constexpr = 64,
):
    b, kvh = tl.program_id(0), tl.program_id(1)
    dtype = out_ptr.dtype.element_ty
    g = tl.arange(0, GP)
    g_ok = g < GROUPS
    d = tl.arange(0, HD)
    partner_d = (d + HD // 2) % HD
    row = b * (heads + 2 * kv_heads) * HD
    q_at = row + (kvh * GROUPS + g)[:, None] * HD  # (GP, 1): the group's query heads
    k_at = row + (heads + kvh) * HD  # this kv head's key, then its value kv_heads * hd later
    v_at = k_at + kv_heads * HD
    # Before the wait: what the kernel before this one does not write (positions and rotary
    # tables come from the step's start, the norms are weights).
    last = tl.load(pos_ptr + b)
    cos = tl.load(cos_ptr + b * HD + d).to(tl.float32)
    sin = tl.load(sin_ptr + b * HD + d).to(tl.float32)
    base = b * stride_row + kvh * stride_head
    if PREFETCH:  # slots 0..last-1 (at most ask_slots), (slots, hd) elements each of keys and values
        asked = tl.minimum(last, ask_slots) * stride_slot
        ask_l2(k_ptr + base, asked, LINES)
        ask_l2(v_ptr + base, asked, LINES)
    await_inputs(PDL)
    q = tl.load(qkv_ptr + q_at + d[None, :], mask=g_ok[:, None], other=0.0).to(tl.float32)
    q_partner = tl.load(qkv_ptr + q_at + partner_d[None, :], mask=g_ok[:, None], other=0.0).to(tl.float32)
    q = _norm_rope(q, q_partner, qn_ptr, cos, sin, eps, dtype, NORM, HD)  # (GP, hd); padding rows stay 0
    k = tl.load(qkv_ptr + k_at + d)[None, :].to(tl.float32)
    k_partner = tl.load(qkv_ptr + k_at + partner_d)[None, :].to(tl.float32)
    k = _norm_rope(k, k_partner, kn_ptr, cos, sin, eps, dtype, NORM, HD)  # (1, hd)
    v = tl.load(qkv_ptr + v_at + d)
    tl.store(k_ptr + base + last * stride_slot + d[None, :], k)
    tl.store(v_ptr + base + last * stride_slot + d, v)
    tl.debug_barrier()  # the new slot stored before any of this program's threads reads it back
    out = attend_slots(q, k_ptr, v_ptr, base, last, stride_slot, scale, dtype, GP, HD, BLOCK_S, F32)
    tl.store(out_ptr + (b * heads + kvh * GROUPS + g)[:, None] * HD + d[None, :], out.to(dtype), mask=g_ok[:, None])


@functools.cache
def _sm_count(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


def slots_per_step(x, hd: int, programs: int = 1) -> int:
    """BLOCK_S for 2-byte dtypes and heads of at most 128 (MANY_PROGRAMS_SLOTS where the programs
    outnumber the SMs), fewer for wider elements or heads (see BLOCK_S)."""
    slots = MANY_PROGRAMS_SLOTS if _many(x, programs) else BLOCK_S
    return max(16, slots * 2 // x.element_size() * 128 // max(hd, 128))


def _many(x, programs: int) -> bool:
    """Whether a launch of `programs` programs over CUDA tensors x outnumbers the SMs."""
    return x.is_cuda and programs > _sm_count(x.device)


def _meta(x, groups: int, hd: int, pdl: bool, programs: int, queries: int = 1) -> dict:
    """The launch settings both kernels share, for inputs x of the model dtype."""
    gp = max(16, triton.next_power_of_2(groups * queries))  # the query heads padded to the tensor cores' 16 rows
    stages = {} if STAGES is None else {"num_stages": STAGES}
    return dict(GROUPS=groups, GP=gp, HD=hd, BLOCK_S=slots_per_step(x, hd, programs), F32=x.dtype == torch.float32,
                PDL=pdl, launch_pdl=pdl, num_warps=MANY_PROGRAMS_WARPS if _many(x, programs) else WARPS,
                **stages)  # fmt: skip


def launch(q, k_cache, v_cache, pos, groups: int, pdl: bool):
    """q (B, Q, heads, hd) contiguous, caches (rows >= B, kv_heads, slots, hd), pos (B, Q)
    contiguous -> (B, Q, heads, hd)."""
    b, queries, heads, hd = q.shape
    assert k_cache.stride() == v_cache.stride() and k_cache.stride(3) == 1
    out = q.new_empty(b, queries, heads, hd)
    attend_kernel[(b, k_cache.shape[1])](
        q, k_cache, v_cache, pos, out,
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2), heads, hd**-0.5,
        QUERIES=queries, **_meta(q, groups, hd, pdl, b * k_cache.shape[1], queries),
    )  # fmt: skip
    return out


def launch_fresh(qkv, cos, sin, q_norm, k_norm, eps: float, k_cache, v_cache, pos, heads: int, pdl: bool):
    """qkv (B, (heads + 2 kv_heads) hd) contiguous, cos/sin (B, hd), q_norm/k_norm (hd,) or None,
    caches (rows >= B, kv_heads, slots, hd), pos (B,): writes each row's key and value at slot
    pos, returns the attention (B, heads, hd)."""
    b = qkv.shape[0]
    kv_heads, hd = k_cache.shape[1], k_cache.shape[3]
    assert k_cache.stride() == v_cache.stride() and k_cache.stride(3) == 1
    groups = heads // kv_heads
    out = qkv.new_empty(b, heads, hd)
    norm = q_norm is not None
    programs = b * kv_heads
    prefetch = PREFETCH and qkv.is_cuda and not _many(qkv, programs)
    ask_slots = ASK_BYTES // (programs * 2 * k_cache.stride(2) * k_cache.element_size())
    meta = _meta(qkv, groups, hd, pdl, programs)
    fresh_kernel[(b, kv_heads)](
        qkv, cos, sin, q_norm if norm else cos, k_norm if norm else cos, k_cache, v_cache, pos, out,
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2), heads, kv_heads, hd**-0.5, eps,
        ask_slots=ask_slots, NORM=norm, PREFETCH=prefetch, LINES=32 * meta["num_warps"], **meta,
    )  # fmt: skip
    return out
