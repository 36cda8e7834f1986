"""The Triton kernel behind fast/attend.py: attention of one query per row over that row's valid
cache slots, one program per (row, kv head) serving the kv head's group of query heads.

Splitting the slots across programs (flash-decoding: partial results merged by the last split
to finish) was measured on an H100 and lost at these cache sizes (a few hundred slots): 9.3 us per
layer at batch 1 against 6.6 unsplit, the merge of 16-row padded partials costing more than the
parallelism gained. fast.attend therefore serves caches of at most MAX_SLOTS slots only.

Per program: the group's queries q (GP, hd) (GP = the group padded to the 16 rows the tensor
cores need; padding rows are zeros and never stored), then slots 0..pos in BLOCK_S steps: scores
q @ k.T (GP, BLOCK_S), an online softmax (running max m, sum l), and acc += p @ v (GP, hd).
Rounding follows the unfused path where it can: the scores are rounded to the model dtype before
scaling (the unfused product returns the model dtype); the probabilities are rounded to it before
multiplying the values, here relative to the running maximum rather than after normalising.

Imported only where Triton is installed; the interpreter (TRITON_INTERPRET=1) runs it on CPU.
"""

import torch
import triton
import triton.language as tl

from infercomp.fast.gemv_kernel import await_inputs

BLOCK_S = 64  # slots per step


@triton.jit
def _dot(a, b, F32: tl.constexpr):
    if F32:
        return tl.dot(a, b, input_precision="ieee")  # exact float32 products, not TF32
    return tl.dot(a, b)


@triton.jit
def attend_kernel(
    q_ptr,  # (B, heads, hd) contiguous
    k_ptr,  # cache (rows, kv_heads, slots, hd), last dimension contiguous
    v_ptr,
    pos_ptr,  # (B,) int64: each row's newest slot; it attends to slots 0..pos
    out_ptr,  # (B, heads, hd)
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
):
    b, kvh = tl.program_id(0), tl.program_id(1)
    dtype = out_ptr.dtype.element_ty
    g = tl.arange(0, GP)
    g_ok = g < GROUPS
    d = tl.arange(0, HD)
    at = (b * heads + kvh * GROUPS + g)[:, None] * HD + d[None, :]  # the group's (GP, hd) elements
    await_inputs(PDL)
    q = tl.load(q_ptr + at, mask=g_ok[:, None], other=0.0)
    last = tl.load(pos_ptr + b)
    base = b * stride_row + kvh * stride_head
    m = tl.full([GP], float("-inf"), dtype=tl.float32)
    total = tl.zeros([GP], dtype=tl.float32)
    acc = tl.zeros([GP, HD], dtype=tl.float32)
    for s0 in range(0, last + 1, BLOCK_S):
        s = s0 + tl.arange(0, BLOCK_S)
        s_ok = s <= last
        slot = base + s[:, None] * stride_slot + d[None, :]
        k = tl.load(k_ptr + slot, mask=s_ok[:, None], other=0.0)  # (BLOCK_S, hd)
        scores = _dot(q, tl.trans(k), F32).to(dtype).to(tl.float32) * scale  # (GP, BLOCK_S)
        scores = tl.where(s_ok[None, :], scores, float("-inf"))
        m_new = tl.maximum(m, tl.max(scores, axis=1))
        alpha = tl.exp(m - m_new)  # 0 on the first step (m = -inf; slot 0 is always valid)
        p = tl.exp(scores - m_new[:, None])
        total = total * alpha + tl.sum(p, axis=1)
        v = tl.load(v_ptr + slot, mask=s_ok[:, None], other=0.0)
        acc = acc * alpha[:, None] + _dot(p.to(dtype), v, F32)
        m = m_new
    tl.store(out_ptr + at, (acc / total[:, None]).to(dtype), mask=g_ok[:, None])


def launch(q, k_cache, v_cache, pos, groups: int, pdl: bool):
    """q (B, heads, hd) contiguous, caches (rows >= B, kv_heads, slots, hd), pos (B,) -> (B, heads, hd)."""
    b, heads, hd = q.shape
    assert k_cache.stride() == v_cache.stride() and k_cache.stride(3) == 1
    out = q.new_empty(b, heads, hd)
    attend_kernel[(b, k_cache.shape[1])](
        q, k_cache, v_cache, pos, out,
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2), heads, hd**-0.5,
        GROUPS=groups, GP=max(16, triton.next_power_of_2(groups)), HD=hd, BLOCK_S=BLOCK_S,
        F32=q.dtype == torch.float32, PDL=pdl, launch_pdl=pdl, num_warps=4,
    )  # fmt: skip
    return out
