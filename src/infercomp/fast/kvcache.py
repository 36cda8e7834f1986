"""The fast engine's KV cache: keys and values in the model dtype, or quantized to one byte.

Every kind is a set of tensors allocated once per run and written in place, so a step that writes
and reads it can be captured as a CUDA graph:
  model dtype  K and V, each one (layers, rows, kv_heads, slots, head_dim) tensor
  int8 / fp8   the same in one byte per value (fp8 e4m3 held as its uint8 bits: indexed writes
               into float8 tensors are not implemented for every device), plus one float32 scale
               per (row, kv head, slot) for K and for V: (layers, rows, kv_heads, slots) each.
A layer reads and writes its own part, a view (KVCache.layer).

Why one scale per token and kv head: a token's key and value are written once, at its own slot,
and never change, so a scale taken from that token's own head_dim values is final when written
(a per-channel scale over many tokens, the other usual choice, would need old slots requantized
when a larger value arrives, which fixed-shape in-place steps cannot afford). Heads differ in size,
so each has its own. The scales cost 4 / head_dim of the codes (3 % at head_dim 128); float32
keeps them exact, so the only rounding is the codes' own (int8: half a step of max|x| / 127).

Dequantization happens inside attention without a dequantized copy of the cache times its scales:
the key scale multiplies the scores (q . (s_k k) = s_k (q . k)) and the value scale multiplies the
probabilities (sum p_j s_j v_j), so the cache is read as codes cast to the compute dtype (exact:
int8 and e4m3 values are exact in bfloat16).
"""

from __future__ import annotations

import torch

from infercomp.errors import whole_number_setting
from infercomp.measure.memory import CODED_KV_KINDS, kv_bytes

# The cache_implementation values the fast engine serves: its own static cache serves "dynamic"
# and "static"; "quantized" is the int8 / fp8 cache here, "offloaded" the host-memory cache
# (offload.py; CUDA only, as everywhere).
FAST_CACHES = ("dynamic", "static", "quantized", "offloaded")
KINDS = CODED_KV_KINDS  # the quantized kinds; None means the model dtype
FP8 = torch.float8_e4m3fn
CODE_MAX = {"int8": 127.0, "fp8": 448.0}  # the largest code: |x| = max|x| lands there
# Codes are read as code x UNIT, a power of two (exact in any float dtype) that keeps them under 1:
# q . k over head_dim raw codes up to 448 could overflow float16's 65,504.
UNIT = {"int8": 2.0**-7, "fp8": 2.0**-9}
STORAGE = {"int8": torch.int8, "fp8": torch.uint8}


# The most bytes one beam-step reorder gathers into a temporary at once (KVCache.reorder), unless
# one layer's rows alone are more. The temporary is held in a captured step's memory pool, so it
# shows in the measured peak memory (and is not in maxbatch's estimate, which is why it is small).
# INFERCOMP_FAST_REORDER_MB sets it (default 64); 0 moves one layer at a time, the per-layer
# copies this replaced, so that a benchmark can compare the two on one machine.
def _reorder_bytes() -> int:
    return whole_number_setting("INFERCOMP_FAST_REORDER_MB", 64, "MB", "a layer at a time") << 20


REORDER_BYTES = _reorder_bytes()


def quantize(x: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """x (..., head_dim) -> codes (..., head_dim) in the kind's storage dtype, scales (...) float32
    with x ~= codes_as(codes) * scale."""
    top = CODE_MAX[kind]
    step = (x.abs().amax(-1).float() / top).clamp(min=torch.finfo(torch.float32).tiny)  # x per code
    y = x.float() / step[..., None]
    if kind == "int8":
        codes = y.round().clamp(-top, top).to(torch.int8)
    else:
        codes = y.clamp(-top, top).to(FP8).view(torch.uint8)
    return codes, step / UNIT[kind]


def codes_as(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Stored codes in the compute dtype, code x UNIT (exact), without their scales: one new
    tensor (scaled in place, so an eager step holds one copy, not two)."""
    if t.dtype == torch.uint8:  # fp8 bits
        return t.view(FP8).to(dtype).mul_(UNIT["fp8"])
    return t.to(dtype).mul_(UNIT["int8"])


def kind_of(k: torch.Tensor) -> str:
    """The quantized kind a cache tensor holds, from its storage dtype."""
    return "int8" if k.dtype == torch.int8 else "fp8"


class KVCache:
    """One model's keys and values for `rows` rows of `slots` positions. A row's tokens sit in
    slots 0..len-1 at their own positions; rolling a row back is moving its length (later writes
    overwrite the slots and their scales)."""

    def __init__(self, shape, rows: int, slots: int, dtype, device, kind: str | None = None):
        if kind is not None and kind not in KINDS:
            raise ValueError(f"KV cache kind {kind!r}: allowed {', '.join(KINDS)} or None (model dtype)")
        size = (rows, shape.kv_heads, slots, shape.head_dim)
        store = dtype if kind is None else STORAGE[kind]
        # One tensor per kind of entry, (layers, rows, ...); each layer's part is a view of it, so a
        # beam step's reorder is a few copies over all layers (see reorder), not two per layer.
        self.stacks = [torch.zeros((shape.layers, *size), dtype=store, device=device) for _ in "kv"]
        # (indexed views, not unbind's: those may not be written in place where autograd records)
        self.k, self.v = ([t[i] for i in range(shape.layers)] for t in self.stacks)
        self.k_scale: list[torch.Tensor | None] = [None] * shape.layers
        self.v_scale: list[torch.Tensor | None] = [None] * shape.layers
        if kind is not None:
            scales = [torch.ones((shape.layers, *size[:3]), device=device) for _ in "kv"]
            self.stacks += scales
            self.k_scale, self.v_scale = ([t[i] for i in range(shape.layers)] for t in scales)
        self.kind, self.dtype = kind, dtype
        self.rows, self.slots = rows, slots
        self.heads = torch.arange(shape.kv_heads, device=device)[None, None, :]  # (1, 1, kv_heads)

    def layer(self, i: int) -> tuple:
        """What one layer's attention reads and writes: (k, v, k_scale, v_scale), scales None
        for the model-dtype kind."""
        return self.k[i], self.v[i], self.k_scale[i], self.v_scale[i]

    def tensors(self) -> list[torch.Tensor]:
        return [t for t in self.k + self.v + self.k_scale + self.v_scale if t is not None]

    def nbytes(self) -> int:
        """Bytes of the cache's tensors, codes and scales: measured, not computed from a formula."""
        return sum(t.numel() * t.element_size() for t in self.tensors())

    def reorder(self, parents: torch.Tensor) -> None:
        """Beam search: row i continues from row parents[i]. parents (B,), B <= rows.

        A gather into a temporary, then a copy back (rows may swap). Both run over a chunk of
        layers at a time, at most REORDER_BYTES of gathered rows (or one layer, where that is
        more): one launch pair per chunk and stack, where there was one per layer's tensor (a
        captured Qwen3-4B beam step made 72 pairs, 144 launches), and a temporary that stays
        small beside long caches."""
        b = parents.shape[0]
        for stack in self.stacks:
            layer_bytes = stack[0, :b].numel() * stack.element_size()
            step = max(1, REORDER_BYTES // max(1, layer_bytes))
            for lo in range(0, stack.shape[0], step):
                part = stack[lo : lo + step]  # (layers in the chunk, rows, ...)
                part[:, :b].copy_(part.index_select(1, parents))

    # A forward pass calls these around its layers; an offloaded cache moves layers in them.
    def begin(self, written: slice | None) -> None:
        pass

    def before(self, i: int) -> None:
        pass

    def after(self, i: int) -> None:
        pass

    def end(self) -> None:
        pass


def kind_for(settings, config) -> str | None:
    """The cache kind a run asks for: None (the model dtype), "int8" / "fp8" (quantized), or
    "offloaded" (host memory, fast.offload)."""
    if settings.cache_implementation == "offloaded":
        return "offloaded"
    if settings.cache_implementation != "quantized":
        return None
    return getattr(config, "kv_cache_dtype", "int8")


def make_cache(shape, rows: int, slots: int, dtype, device, kind: str | None):
    """The cache of a kind: KVCache, or OffloadedKVCache for "offloaded"."""
    if kind == "offloaded":
        from infercomp.fast.offload import OffloadedKVCache

        return OffloadedKVCache(shape, rows, slots, dtype, device)
    return KVCache(shape, rows, slots, dtype, device, kind)


def bytes_per_token(shape, dtype: torch.dtype, kind: str | None) -> int:
    """K and V of one token over all layers: the cross-check for KVCache.nbytes()."""
    # int8 / fp8 codes with their scales; None and "offloaded" hold the model dtype
    value_bytes = torch.empty((), dtype=dtype).element_size()
    return kv_bytes(shape.layers, shape.kv_heads, shape.head_dim, value_bytes, kind)


def store(kv: tuple, xk: torch.Tensor, xv: torch.Tensor, rows, heads, pos) -> None:
    """Write new keys and values xk, xv (B, q, kv_heads, hd) at each query's (row, slot).
    rows, pos (B, q); heads (1, 1, kv_heads): the (B, q, kv_heads) index triples of the writes."""
    k, v, k_scale, v_scale = kv
    at = (rows[:, :, None], heads, pos[:, :, None])
    if k_scale is None:
        k[at] = xk
        v[at] = xv
        return
    kind = kind_of(k)
    for cache, scales, x in ((k, k_scale, xk), (v, v_scale, xv)):
        codes, scale = quantize(x, kind)
        cache[at] = codes
        scales[at] = scale
