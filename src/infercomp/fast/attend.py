"""Decode attention in one kernel: one query per row (with BLOCKS, a few) against that row's
valid cache slots.

A decode step's attention in the unfused path is four kernels per layer (scores, mask and
softmax, values, and the layout copies between them) over every slot of the cache, valid or not;
on an H100 they cost about 7 us per layer at batch 1 for a few hundred slots, while the bytes
they need take well under one. Here one Triton kernel (fast/attend_kernel.py) reads each row's
slots 0..pos only, once per kv head for the whole group of query heads that share it, with an
online softmax. attend_fresh goes one step further back: from the q|k|v product it also applies
the query and key norms and the rotary embedding and writes the new key and value, so a decode
layer's attention is one kernel between two products.

Serves one query per row (with BLOCKS, a few), caches of at most MAX_SLOTS slots in the model dtype (the int8 / fp8
cache kinds keep the unfused path: their scales apply there), head sizes that are powers of two
from 16, on CUDA with Triton (or Triton's CPU interpreter, for tests). INFERCOMP_FAST_ATTENTION=matmul or =sdpa keeps
the unfused path (the knob that measures what the kernel buys).
"""

from __future__ import annotations

import os

import torch

from infercomp.errors import SettingError
from infercomp.fast.triton_import import kernel_or_false

# fast/attend_kernel.py's launchers by name, looked up on first use: False where Triton is not
# installed
_LAUNCHERS: dict[str, object] = {}
# One program per (row, kv head) reads its slots in sequence: past a few thousand slots the
# unfused path's matrix products, spread over the whole GPU, are faster (not measured here).
MAX_SLOTS = 2048
# Tests set this to run the kernel on CPU tensors through Triton's interpreter (TRITON_INTERPRET=1);
# otherwise CPU tensors keep the unfused path even where the interpreter is switched on.
ON_CPU = False


def _launcher(name: str):
    """fast/attend_kernel.py's `name` ("launch", "launch_fresh"), or None without Triton."""
    if name not in _LAUNCHERS:
        _LAUNCHERS[name] = kernel_or_false("infercomp.fast.attend_kernel", name)
    return _LAUNCHERS[name] or None


def wanted() -> bool:
    return os.environ.get("INFERCOMP_FAST_ATTENTION", "kernel") == "kernel"


def fuses_prologue() -> bool:
    """Whether the per-head norms, the rotary embedding and the cache write run inside the attention
    kernel (attend_fresh) where it serves; INFERCOMP_FAST_FUSED_ROPE=0 keeps them in the compiled
    layer function (the knob that measures what the fusion buys)."""
    return os.environ.get("INFERCOMP_FAST_FUSED_ROPE", "1") != "0"


# Blocks of a few queries a row (a verify pass's k + 1 tokens, a draft's first step of two, and a
# prefill of at most MAX_BLOCK_ROWS / groups tokens) through the same kernel, each query seeing
# the slots up to its own position, where the unfused path reads every slot of the cache under a
# mask, in several kernels a layer. Qwen3-4B's verify pass of k + 1 = 5 tokens at batch 1 on
# H200s (docs/measurements/2026-11-28-h200-blocks): 1.080x and 1.092x a decode step with it
# (calls 1 and 2), 1.140x without (call 4). INFERCOMP_FAST_BLOCK_ATTENTION=0 turns it off.
def _blocks_from_env() -> bool:
    value = os.environ.get("INFERCOMP_FAST_BLOCK_ATTENTION", "1")
    if value not in ("0", "1"):
        raise SettingError(f"INFERCOMP_FAST_BLOCK_ATTENTION={value!r}: expected 1 (on, the default) or 0 (off)")
    return value == "1"


BLOCKS = _blocks_from_env()
MAX_BLOCK_ROWS = 64  # queries x the query heads of one kv head: one program's tile (Qwen3-4B: 16 queries)


def serves(xq: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, k_scale) -> bool:
    """Whether this kernel attends for queries xq (B, q, heads, hd) over k_cache and v_cache: one
    query per row, or with BLOCKS a few."""
    on_device = xq.is_cuda or (ON_CPU and os.environ.get("TRITON_INTERPRET") == "1")
    q, heads, hd = xq.shape[1:]
    return (
        wanted()
        and on_device
        and (q == 1 or (BLOCKS and q * heads // k_cache.shape[1] <= MAX_BLOCK_ROWS))
        and k_scale is None
        and k_cache.dtype == xq.dtype
        and xq.dtype in (torch.bfloat16, torch.float16, torch.float32)
        and v_cache.stride() == k_cache.stride()
        and hd >= 16
        and hd & (hd - 1) == 0
        and k_cache.stride(-1) == 1
        and k_cache.shape[2] <= MAX_SLOTS
        and _launcher("launch") is not None
    )


def serves_steps(cache, heads: int, dtype: torch.dtype, queries: int = 1) -> bool:
    """Whether a step over cache (`queries` queries a row of `heads` heads in the model's dtype)
    attends through this kernel, which reads each row's valid slots only."""
    k, v, k_scale = cache.layer(0)[:3]
    query = torch.empty(1, queries, heads, k.shape[-1], dtype=dtype, device=k.device)  # (B, q, heads, hd)
    return serves(query, k, v, k_scale)


@torch.library.custom_op("infercomp::attend", mutates_args=())
def attend(xq: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """xq (B, q, heads, hd), caches (rows >= B, kv_heads, slots, hd), pos (B, q): each query's
    slot, its keys already written -> (B, q, heads * hd). Reads the caches, writes nothing in them."""
    from infercomp.fast.gemv_kernel import pdl

    b, q, heads, hd = xq.shape
    groups = heads // k_cache.shape[1]
    out = _launcher("launch")(xq.contiguous(), k_cache, v_cache, pos.contiguous(), groups, pdl(xq.device))
    return out.view(b, q, heads * hd)


@attend.register_fake
def _(xq, k_cache, v_cache, pos):
    b, q, heads, hd = xq.shape
    return xq.new_empty(b, q, heads * hd)


@torch.library.custom_op("infercomp::attend_fresh", mutates_args=("k_cache", "v_cache"))
def attend_fresh(
    qkv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    q_norm: torch.Tensor | None,
    k_norm: torch.Tensor | None,
    eps: float,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    pos: torch.Tensor,
    heads: int,
) -> torch.Tensor:
    """The decode attention block from the q|k|v product: qkv (B, 1, (heads + 2 kv_heads) hd),
    cos/sin (B, 1, 1, hd), Qwen3's q_norm/k_norm (hd,) or None, pos (B, 1). Normalises and rotates
    the new query and key, writes key and value at each row's slot pos, attends over slots
    0..pos: (B, 1, heads * hd). The same result as the unfused norms, rotation, kvcache.store and
    attend (fast/attend_kernel.py: fresh_kernel)."""
    from infercomp.fast.gemv_kernel import pdl

    b, hd = qkv.shape[0], k_cache.shape[-1]
    out = _launcher("launch_fresh")(
        qkv.reshape(b, -1).contiguous(),
        cos.reshape(b, hd).contiguous(),
        sin.reshape(b, hd).contiguous(),
        q_norm,
        k_norm,
        eps,
        k_cache,
        v_cache,
        pos.reshape(b),
        heads,
        pdl(qkv.device),
    )
    return out.view(b, 1, heads * hd)


@attend_fresh.register_fake
def _(qkv, cos, sin, q_norm, k_norm, eps, k_cache, v_cache, pos, heads):
    return qkv.new_empty(qkv.shape[0], 1, heads * k_cache.shape[-1])
