"""A lean forward pass of the Llama / Qwen2 / Qwen3 family over a static KV cache.

The fast engine does not run transformers' module tree: a decode step there is hundreds of small
Python calls. It reads the loaded transformers model's weights instead and runs one plain function
per layer, so the same compiled code serves every layer and the whole step can be captured as one
CUDA graph. Projections are fused (q|k|v and gate|up): one matrix-vector product instead of three
or two. The transformers model keeps working: its q/k/v and gate/up weights are re-pointed at
views of the fused tensors, so the weights are held once.

Every operation mirrors transformers' own order and precision (RMSNorm in float32, rotary
embedding in the model dtype), so float32 outputs agree token for token with `generate()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from infercomp.errors import whole_number_setting
from infercomp.fast import attend, gemv, packed
from infercomp.fast.kvcache import codes_as, store
from infercomp.fast.packed import PackedWeight
from infercomp.fast.products import gated, project
from infercomp.quant_table import is_table, table_product

SUPPORTED_TYPES = ("llama", "qwen2", "qwen3")
# Attention at decode shapes: "kernel" (the default: fast.attend's one kernel for one query per
# row, where it serves; elsewhere "matmul"), "matmul" (plain matmuls: the compiler fuses the
# softmax with its neighbours; 12 % faster per step on an H200 than PyTorch's fused attention,
# which launches one cuDNN kernel of ~9 us per layer for a single query) or "sdpa". A knob.
ATTENTION = os.environ.get("INFERCOMP_FAST_ATTENTION", "kernel")


class UnsupportedModel(ValueError):
    """The fast engine cannot run this model; the message says why in one line."""


@dataclass
class LayerWeights:
    qkv: torch.Tensor  # (q_dim + 2 kv_dim, hidden)
    qkv_bias: torch.Tensor | None
    o: torch.Tensor  # (hidden, q_dim)
    gate_up: torch.Tensor  # (2 inter, hidden)
    down: torch.Tensor  # (hidden, inter)
    norm_in: torch.Tensor  # (hidden,)
    norm_post: torch.Tensor  # (hidden,)
    q_norm: torch.Tensor | None  # (head_dim,), Qwen3 only
    k_norm: torch.Tensor | None


@dataclass
class Shape:
    """What a forward pass needs to know about the architecture."""

    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    hidden: int
    vocab: int
    eps: float
    max_positions: int

    @property
    def groups(self) -> int:
        return self.heads // self.kv_heads


class LeanModel:
    """The weights of a loaded transformers causal LM, arranged for the fast forward pass."""

    def __init__(self, hf_model):
        cfg = hf_model.config
        check_supported(cfg)
        self.hf = hf_model
        inner = hf_model.model
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.shape = Shape(
            layers=cfg.num_hidden_layers,
            heads=cfg.num_attention_heads,
            kv_heads=cfg.num_key_value_heads,
            head_dim=head_dim,
            hidden=cfg.hidden_size,
            vocab=cfg.vocab_size,
            eps=cfg.rms_norm_eps,
            max_positions=cfg.max_position_embeddings,
        )
        self.dtype = inner.embed_tokens.weight.dtype
        self.device = inner.embed_tokens.weight.device
        # (vocab, hidden) tensors, the same one when tied; the 4-bit weight kinds replace them by
        # one int8 QuantTable (quant_table), read through embed_rows / head_logits
        self.embed = inner.embed_tokens.weight
        self.head = hf_model.lm_head.weight
        self.norm = inner.norm.weight
        self.layers = [_fuse_layer(layer) for layer in inner.layers]
        rotary = inner.rotary_emb
        self.inv_freq = rotary.inv_freq.detach().float()  # (head_dim / 2,)
        self.rope_scaling = float(getattr(rotary, "attention_scaling", 1.0))
        self._rope_len = 0
        self.cos = self.sin = None

    def rope_tables(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin for positions [0, length): (length, head_dim) in the model dtype, computed as
        transformers does (float32 angles, scaled, then cast)."""
        if length > self._rope_len:
            pos = torch.arange(length, device=self.device, dtype=torch.float32)
            freqs = pos[:, None] * self.inv_freq.to(self.device)[None, :]
            emb = torch.cat([freqs, freqs], dim=-1)
            self.cos = (emb.cos() * self.rope_scaling).to(self.dtype)
            self.sin = (emb.sin() * self.rope_scaling).to(self.dtype)
            self._rope_len = length
        return self.cos, self.sin

    def weight_bytes(self) -> int:
        from infercomp.measure.memory import tensor_bytes

        # By object identity (a tied head is the embedding tensor); tensor_bytes counts a
        # quantized weight's real storage, which has no single data pointer.
        seen, total = set(), 0
        for t in [self.embed, self.head, self.norm] + [w for lw in self.layers for w in vars(lw).values()]:
            if t is not None and id(t) not in seen:
                seen.add(id(t))
                total += t.nbytes() if is_table(t) or isinstance(t, PackedWeight) else tensor_bytes(t)
        return total


def check_supported(cfg) -> None:
    kind = getattr(cfg, "model_type", "?")
    if kind not in SUPPORTED_TYPES:
        raise UnsupportedModel(f"model type {kind!r} (the fast engine runs {', '.join(SUPPORTED_TYPES)})")
    if getattr(cfg, "hidden_act", "silu") != "silu":
        raise UnsupportedModel(f"activation {cfg.hidden_act!r} (the fast engine runs 'silu')")
    if getattr(cfg, "use_sliding_window", False) and getattr(cfg, "sliding_window", None):
        raise UnsupportedModel("sliding-window attention")
    rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
    if rope.get("rope_type", "default") in ("dynamic", "longrope"):
        raise UnsupportedModel(f"rope type {rope['rope_type']!r} changes with the sequence length")
    if getattr(cfg, "mlp_bias", False):
        raise UnsupportedModel("biases in the MLP")


def _fuse_layer(layer) -> LayerWeights:
    """Concatenate q|k|v and gate|up into one matrix each, then point the transformers modules'
    weights at views of it, so both code paths share one copy."""
    attn, mlp = layer.self_attn, layer.mlp
    qkv = _fuse([attn.q_proj, attn.k_proj, attn.v_proj])
    bias = None
    if attn.q_proj.bias is not None:
        bias = _fuse([attn.q_proj, attn.k_proj, attn.v_proj], attr="bias")
    gate_up = _fuse([mlp.gate_proj, mlp.up_proj])
    q_norm = getattr(attn, "q_norm", None)
    k_norm = getattr(attn, "k_norm", None)
    return LayerWeights(
        qkv=qkv,
        qkv_bias=bias,
        o=attn.o_proj.weight.detach(),
        gate_up=gate_up,
        down=mlp.down_proj.weight.detach(),
        norm_in=layer.input_layernorm.weight.detach(),
        norm_post=layer.post_attention_layernorm.weight.detach(),
        q_norm=None if q_norm is None else q_norm.weight.detach(),
        k_norm=None if k_norm is None else k_norm.weight.detach(),
    )


@torch.no_grad()
def _fuse(linears, attr: str = "weight") -> torch.Tensor:
    parts = [getattr(m, attr).detach() for m in linears]
    fused = torch.cat(parts, dim=0)
    start = 0
    for module, part in zip(linears, parts, strict=True):
        # Re-point the module at a view of the fused tensor: one copy of the weights in memory.
        getattr(module, attr).data = fused[start : start + part.shape[0]]
        start += part.shape[0]
    return fused


# ---------------------------------------------------------------------------------------------
# The forward pass: plain functions of tensors, so one compiled graph serves every layer.


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """transformers' RMSNorm: statistics in float32, scale in the input dtype."""
    dtype = x.dtype
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(dtype)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding, rotate-half form. x (B, q, heads, hd); cos/sin (B, q, 1, hd)."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def embed_rows(table, ids: torch.Tensor) -> torch.Tensor:
    """The embedding of ids (B, q): (B, q, hidden), from a tensor or an int8 QuantTable."""
    if is_table(table):
        return table.rows(ids)
    return F.embedding(ids, table)


_compiled_product = None


def head_logits(head, x: torch.Tensor, compiled: bool, float32: bool = True) -> torch.Tensor:
    """The LM head: x (B, n, hidden) -> logits (B, n, vocab), float32 unless `float32` is False:
    then a plain tensor head's logits stay in the model dtype (a greedy step needs only their
    argmax, sampling takes them to float32 itself, and the float32 copy of 32 x 151,936 logits
    is a 13.5 us kernel a step on an H100). An int8 QuantTable's product runs infercomp's int8
    kernel for one row (fast.packed: the table is codes and row scales, its int8 format), else
    is compiled where the layers are (`compiled`), so the codes' cast fuses into it; a plain
    tensor head stays one cuBLAS call."""
    global _compiled_product
    if not is_table(head):
        logits = F.linear(x, head)
        return logits.float() if float32 else logits
    one_row = gemv.serves(x) and head.codes.shape[1] % 4 == 0 and packed.kernels() is not None
    if one_row:  # the int8 matrix-vector kernel (whole 32-bit words of codes)
        hidden = head.codes.shape[1]
        return packed.packed_gemv(x, head.codes, head.scale, None, None, None, 0.0, gemv.NONE, 8, hidden).float()
    product = table_product
    if compiled:
        if _compiled_product is None:
            _compiled_product = torch.compile(table_product, dynamic=False, fullgraph=True)
        product = _compiled_product
    return product(x, head.codes, head.scale).float()


def layer_forward(
    x: torch.Tensor,  # (B, q, hidden)
    w: LayerWeights,
    kv: tuple,  # the layer's cache (k, v, k_scale, v_scale), written in place (see fast.kvcache)
    rows: torch.Tensor,  # (B, q) row index of each query (0..B-1), for the cache write
    heads: torch.Tensor,  # (1, 1, kv_heads): 0..kv_heads-1, for the cache write
    pos: torch.Tensor,  # (B, q) cache slot = logical position of each query
    cos: torch.Tensor,  # (B, q, 1, hd)
    sin: torch.Tensor,
    mask: torch.Tensor | None,  # (B, 1, q * groups, S) True where a key may be attended; None: see attention
    shape: Shape,
    normed: torch.Tensor | None = None,  # rms_norm(x, w.norm_in) where the layer before computed it
    norm_next: torch.Tensor | None = None,  # (hidden,) the norm after this layer: see below
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The layer's output x (B, q, hidden); with norm_next, (x, rms_norm(x, norm_next)): the next
    layer's input norm (or the model's final one) computed here, where the compiler makes it and
    the residual add before it one kernel instead of two. fast.runtime's _layers passes it only
    where no layer takes the one-row path (fuses_norms), whose kernels take the norms into the
    products."""
    b, q, _ = x.shape
    h, kvh, hd = shape.heads, shape.kv_heads, shape.head_dim
    one_row = fuses_norms(x, w)
    if one_row:
        qkv = gemv.product(x, w.qkv, w.norm_in, None, shape.eps, gemv.RMSNORM)
    else:
        normed = rms_norm(x, w.norm_in, shape.eps) if normed is None else normed
        qkv = project("qkv", normed, w.qkv, w.qkv_bias)
    xq, xk, xv = qkv.split([h * hd, kvh * hd, kvh * hd], dim=-1)
    xq, xk, xv = xq.view(b, q, h, hd), xk.view(b, q, kvh, hd), xv.view(b, q, kvh, hd)
    if q == 1 and mask is not None and w.qkv_bias is None and attend.fuses_prologue() and attend.serves(xq, *kv[:3]):
        # one query per row: norms, rotation, cache write and attention in one kernel
        out = attend.attend_fresh(qkv, cos, sin, w.q_norm, w.k_norm, shape.eps, kv[0], kv[1], pos, h)
    else:
        if w.q_norm is not None:
            xq, xk = rms_norm(xq, w.q_norm, shape.eps), rms_norm(xk, w.k_norm, shape.eps)
        xq, xk = rotate(xq, cos, sin), rotate(xk, cos, sin)
        out = attention(xq, xk, xv, kv, rows, heads, pos, mask, shape)  # (B, q, heads * hd)
    if one_row:
        x = gemv.product(out, w.o, None, x, 0.0, gemv.NONE)  # x + out @ o.T
        gate_up = gemv.product(x, w.gate_up, w.norm_post, None, shape.eps, gemv.RMSNORM)  # (1, 1, 2 inter)
        x = gemv.product(gate_up, w.down, None, x, 0.0, gemv.SILU)  # x + (silu(gate) * up) @ down.T
    else:
        x = x + project("o", out, w.o)
        act = gated(rms_norm(x, w.norm_post, shape.eps), w.gate_up)  # silu(gate) * up, (B, q, inter)
        x = x + project("down", act, w.down)
    return x if norm_next is None else (x, rms_norm(x, norm_next, shape.eps))


# The most rows (batch x query positions) at which layers whose norms are operations of their own
# also compute the norm after them (see layer_forward's norm_next and fast.runtime's _layers): the
# residual add that ends a layer and the next norm become one kernel. Qwen3-4B on one H200, each
# pair in one process (docs/measurements/2026-11-28-h200, call-1, profile_fast_step's
# norm-chain-off): 4 rows 2.741 ms a step with it against 2.752 without; 32 rows 3.112 against
# 3.038, where the fused kernel also sums the down product's four float32 parts for 32 rows.
# INFERCOMP_FAST_NORM_CHAIN=0 turns it off; INFERCOMP_FAST_NORM_CHAIN_ROWS sets the limit.
def _chain_rows() -> int:
    if os.environ.get("INFERCOMP_FAST_NORM_CHAIN", "1") == "0":
        return 0
    return whole_number_setting("INFERCOMP_FAST_NORM_CHAIN_ROWS", 8, "rows", "no chain")


NORM_CHAIN = _chain_rows()


def chains_norms(x: torch.Tensor, layers: list[LayerWeights]) -> bool:
    """Whether _layers chains the norms for input x (B, q, hidden): none of the layers fuses its
    norms into one-row products, and B * q is at most NORM_CHAIN."""
    return x.shape[0] * x.shape[1] <= NORM_CHAIN and not any(fuses_norms(x, w) for w in layers)


def fuses_norms(x: torch.Tensor, w: LayerWeights) -> bool:
    """Whether the layer with input x runs fast.gemv's one-row kernels, which take its norms and
    residuals into the products (a q|k|v bias keeps the plain path)."""
    return w.qkv_bias is None and gemv.serves(x, w.qkv, w.o, w.gate_up, w.down)


def attention(xq, xk, xv, kv: tuple, rows, heads, pos, mask: torch.Tensor | None, shape: Shape) -> torch.Tensor:
    """Write the new keys and values (B, q, kv_heads, hd) into the cache, attend: (B, q, heads * hd).

    mask None marks a prefill from slot 0 (positions 0..q-1 in every row): its queries attend to
    the block's own fresh keys, causally, through PyTorch's fused attention, whose memory grows
    with q rather than q x q (a 4,096-token prompt's scores would be gigabytes per row).
    """
    b, q, _, hd = xq.shape
    kvh, g = shape.kv_heads, shape.groups
    # Each row writes its new keys at its own positions: no holes, and rolling back a row is
    # only moving its length back (the slots are overwritten later).
    store(kv, xk, xv, rows, heads, pos)
    if mask is not None and attend.serves(xq, kv[0], kv[1], kv[2]):  # one kernel: the valid slots only
        return attend.attend(xq, kv[0], kv[1], pos)
    if mask is None:
        # (B, heads, q, hd); kv heads repeated for their query heads (transformers' repeat_kv)
        qh, kh, vh = (t.transpose(1, 2) for t in (xq, xk, xv))
        kh, vh = kh.repeat_interleave(g, dim=1), vh.repeat_interleave(g, dim=1)
        out = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True)
        return out.transpose(1, 2).reshape(b, q, -1)
    k_cache, v_cache, k_scale, v_scale = kv
    # (B, kv_heads, S, hd): the first S slots (S = the mask's width: all slots in a captured step,
    # only those in use when the host knows the longest row, as on CPU).
    width = mask.shape[-1]
    keys, values = k_cache[:b, :, :width], v_cache[:b, :, :width]
    if k_scale is not None:  # one-byte codes; their scales (B, kv_heads, 1, S) apply below
        keys, values = codes_as(keys, xq.dtype), codes_as(values, xq.dtype)
        k_s, v_s = k_scale[:b, :, None, :width], v_scale[:b, :, None, :width]  # (B, kv_heads, 1, S)
    # Grouped-query attention as plain attention over kv_heads: the `groups` query heads that
    # share a kv head become extra query rows, (B, kv_heads, q * groups, hd).
    queries = xq.view(b, q, kvh, g, hd).permute(0, 2, 1, 3, 4).reshape(b, kvh, q * g, hd)
    if ATTENTION == "sdpa":
        if k_scale is not None:  # dequantized copies: the fused kernel takes no scales
            keys = (keys * k_s.transpose(-1, -2)).to(xq.dtype)
            values = (values * v_s.transpose(-1, -2)).to(xq.dtype)
        out = F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask)
    else:  # plain matmul-softmax-matmul, which the compiler may fuse with its neighbours
        scores = (queries @ keys.transpose(-1, -2)).float() * (hd**-0.5)  # (B, kv_heads, q * groups, S)
        if k_scale is not None:
            scores = scores * k_s  # q . (s k) = s (q . k)
        scores = scores.masked_fill(~mask, float("-inf"))
        probs = scores.softmax(-1)
        if v_scale is not None:
            probs = probs * v_s  # sum_j p_j (s_j v_j) = sum_j (p_j s_j) v_j
        out = probs.to(values.dtype) @ values
    return out.view(b, kvh, q, g, hd).permute(0, 2, 1, 3, 4).reshape(b, q, kvh * g * hd)


def attention_mask(pos: torch.Tensor, slots: int, groups: int) -> torch.Tensor:
    """(B, 1, q * groups, S): query at position p sees the keys in slots 0..p of its own row."""
    b, q = pos.shape
    visible = torch.arange(slots, device=pos.device)[None, None, :] <= pos[:, :, None]  # (B, q, S)
    return visible[:, :, None, :].expand(b, q, groups, slots).reshape(b, 1, q * groups, slots)
