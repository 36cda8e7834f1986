"""Inputs and float64 references for the decode attention kernels (fast/attend.py), shared by the
interpreter tests (tests/test_attend.py) and the GPU tests (tests/test_fast_engine_gpu.py). No
side effects on import: Triton's interpreter is switched on only by the interpreter tests."""

from __future__ import annotations

import torch


def reference(xq, k_cache, v_cache, pos):
    """Each row's query heads over its slots 0..pos, in float64: (B, 1, heads * hd)."""
    b, _, heads, hd = xq.shape
    groups = heads // k_cache.shape[1]
    out = torch.empty(b, heads, hd, dtype=torch.float64)
    for r in range(b):
        keys = k_cache[r, :, : pos[r, 0] + 1].double().repeat_interleave(groups, dim=0)  # (heads, S, hd)
        values = v_cache[r, :, : pos[r, 0] + 1].double().repeat_interleave(groups, dim=0)
        scores = (keys @ xq[r, 0].double()[:, :, None]).squeeze(-1) * hd**-0.5  # (heads, S)
        out[r] = (scores.softmax(-1)[:, :, None] * values).sum(1)  # (heads, hd)
    return out.view(b, 1, heads * hd)


def case(dtype, heads, kv_heads, hd, slots=150, rows=3, seed=0):
    torch.manual_seed(seed)
    xq = torch.randn(rows, 1, heads, hd).to(dtype)
    k_cache = torch.randn(rows + 1, kv_heads, slots, hd).to(dtype)  # one spare row, as a batch below capacity
    v_cache = torch.randn(rows + 1, kv_heads, slots, hd).to(dtype)
    pos = torch.tensor([[0], [slots - 1], [min(70, slots - 2)]][:rows])  # one slot, all slots, some
    return xq, k_cache, v_cache, pos


def fresh_case(dtype, heads, kv_heads, hd, slots, norm: bool, seed=0):
    """The q|k|v product of one new token per row, rotary tables at each row's position, Qwen3's
    head norms (or None) and caches: the fused kernel's inputs."""
    torch.manual_seed(seed)
    _, k_cache, v_cache, pos = case(dtype, heads, kv_heads, hd, slots, seed=seed)
    rows = pos.shape[0]
    qkv = torch.randn(rows, 1, (heads + 2 * kv_heads) * hd).to(dtype)
    inv_freq = 1.0 / 10000 ** (torch.arange(0, hd, 2).float() / hd)
    angles = pos.float()[:, :, None] * inv_freq  # (B, 1, hd / 2)
    emb = torch.cat([angles, angles], dim=-1)[:, :, None, :]  # (B, 1, 1, hd)
    cos, sin = emb.cos().to(dtype), emb.sin().to(dtype)
    weights = (1 + 0.5 * torch.randn(hd)).to(dtype), (1 + 0.5 * torch.randn(hd)).to(dtype)
    return qkv, cos, sin, weights if norm else (None, None), k_cache, v_cache, pos


def unfused_block(qkv, cos, sin, q_norm, k_norm, eps, k_cache, v_cache, pos, heads, skip_norm=False):
    """The fast engine's unfused path (fast.model's norms and rotation, a cache write), then
    attention in float64: (out (B, 1, heads * hd), k_cache, v_cache) with the new slots written."""
    from infercomp.fast.model import rms_norm, rotate

    b, kvh, hd = qkv.shape[0], k_cache.shape[1], k_cache.shape[-1]
    xq, xk, xv = qkv.split([heads * hd, kvh * hd, kvh * hd], dim=-1)
    xq, xk, xv = xq.view(b, 1, heads, hd), xk.view(b, 1, kvh, hd), xv.view(b, 1, kvh, hd)
    if q_norm is not None and not skip_norm:
        xq, xk = rms_norm(xq, q_norm, eps), rms_norm(xk, k_norm, eps)
    xq, xk = rotate(xq, cos, sin), rotate(xk, cos, sin)
    k_cache, v_cache = k_cache.clone(), v_cache.clone()
    for r in range(b):
        k_cache[r, :, pos[r, 0]] = xk[r, 0]
        v_cache[r, :, pos[r, 0]] = xv[r, 0]
    return reference(xq, k_cache, v_cache, pos), k_cache, v_cache


def block_case(dtype, heads, kv_heads, hd, queries, slots=150):
    """`queries` new tokens a row at consecutive slots, their keys already in the cache: a block
    starting at slot 0 (its first query sees one slot), one ending at the cache's last slot, and
    one ending at slot 64, whose earlier queries see none of a 64-slot step's second block."""
    xq1, k_cache, v_cache, _ = case(dtype, heads, kv_heads, hd, slots)
    xq = torch.randn(xq1.shape[0], queries, heads, hd).to(dtype)
    ends = torch.tensor([[queries - 1], [slots - 1], [64]])
    return xq, k_cache, v_cache, ends - queries + 1 + torch.arange(queries)[None, :]  # pos (B, queries)


def block_reference(xq, k_cache, v_cache, pos):
    """Each query over its own row's slots 0..its pos, in float64: (B, q, heads * hd)."""
    parts = [reference(xq[:, i : i + 1], k_cache, v_cache, pos[:, i : i + 1]) for i in range(xq.shape[1])]
    return torch.cat(parts, dim=1)
