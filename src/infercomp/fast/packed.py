"""infercomp's own weight-only int8 and int4 formats, read by its own Triton kernels.

torchao's kernels read their quantized weights at about 1 TB/s on an H100 at batch 1 (tinygemm's
int4 step: 2.2 GB in 2.5 ms), while the fast engine's bf16 matrix-vector kernel streams 2.35 TB/s.
These formats are laid out for that kernel's access pattern instead:

  int8  codes (N, K) int8, scale (N,) in the model dtype: W[n, k] ~= codes[n, k] * scale[n]
        (symmetric, one scale per output row; the scale factors out of each dot product; K a
        multiple of 4, so the kernel reads whole 32-bit words)
  int4  codes (N, K/2) uint8: byte j of a row holds column j in its low nibble and column
        j + K/2 in its high nibble, so one contiguous read of a row's bytes feeds two contiguous
        runs of x, with no interleaving. Asymmetric groups of G columns (G = 128 where K allows):
        scale, low (N, K/G) in the model dtype, W[n, k] ~= codes * scale[n, k // G] + low[n, k // G]
        (code 0 is the group's minimum, code 15 its maximum).

Products (`linear`): on CUDA with Triton, one row through a matrix-vector kernel (fast.gemv's
prologues fuse the norms, the activation and the residual into it), more rows through a tiled
kernel that dequantizes a block of the weight into registers before a tensor-core product.
Elsewhere (CPU, or no Triton) the weight is dequantized into the model dtype and multiplied by
PyTorch: the reference semantics the kernels are tested against.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from infercomp.fast.triton_import import kernel_or_false

BITS = (8, 4)
GROUPS = (128, 64, 32, 16)  # int4 group sizes, the first that divides K / 2 is taken (16: tl.dot's least)


@dataclass
class PackedWeight:
    codes: torch.Tensor  # int8 (N, K) | uint8 (N, K / 2)
    scale: torch.Tensor  # (N,) | (N, K / G), model dtype
    low: torch.Tensor | None  # None | (N, K / G), model dtype
    bits: int
    group: int  # int4: G columns per scale; int8: K (one scale per row)
    in_features: int
    dtype: torch.dtype

    @property
    def out_features(self) -> int:
        return self.codes.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.out_features, self.in_features)

    @property
    def device(self) -> torch.device:
        return self.codes.device

    def nbytes(self) -> int:
        return sum(t.nbytes for t in (self.codes, self.scale, self.low) if t is not None)

    def rows(self, start: int, stop: int) -> PackedWeight:
        """Output rows [start, stop): views, no copy (rows are independent in both formats)."""
        low = None if self.low is None else self.low[start:stop]
        return PackedWeight(
            self.codes[start:stop], self.scale[start:stop], low, self.bits, self.group, self.in_features, self.dtype
        )


def int4_group(in_features: int) -> int | None:
    """The int4 group size for K input columns: a group never straddles the two nibble halves."""
    return next((g for g in GROUPS if in_features % (2 * g) == 0), None)


@torch.no_grad()
def pack(weight: torch.Tensor, bits: int) -> PackedWeight:
    """Quantize one (N, K) weight. Scales are rounded to the model dtype before the codes are
    chosen, so the codes fit the stored scales (what dequantize() and the kernels read)."""
    w = weight.detach()
    n, k = w.shape
    dtype = w.dtype
    tiny = torch.finfo(torch.float32).tiny
    if bits == 8:
        if k % 4:
            raise ValueError(f"int8 needs the input size to be a multiple of 4 (whole 32-bit words), not {k}")
        scale = (w.abs().amax(-1).float() / 127.0).clamp(min=tiny).to(dtype)  # (N,)
        codes = (w.float() / scale.float()[:, None]).round().clamp(-127, 127).to(torch.int8)
        return PackedWeight(codes, scale, None, 8, k, k, dtype)
    if bits != 4:
        raise ValueError(f"bits {bits}: allowed {BITS}")
    group = int4_group(k)
    if group is None:
        raise ValueError(f"int4 needs the input size to be a multiple of {2 * GROUPS[-1]}, not {k}")
    grouped = w.float().view(n, k // group, group)  # (N, groups, G)
    lo, hi = grouped.amin(-1), grouped.amax(-1)
    scale = ((hi - lo) / 15.0).clamp(min=tiny).to(dtype)  # (N, groups)
    low = lo.to(dtype)
    q = ((grouped - low.float()[..., None]) / scale.float()[..., None]).round().clamp(0, 15).to(torch.uint8)
    q = q.view(n, k)
    codes = q[:, : k // 2] | (q[:, k // 2 :] << 4)  # (N, K/2): column j low nibble, j + K/2 high
    return PackedWeight(codes.contiguous(), scale.contiguous(), low.contiguous(), 4, group, k, dtype)


def dequantize(w: PackedWeight) -> torch.Tensor:
    """The weight the codes stand for, (N, K) in the model dtype."""
    if w.bits == 8:
        return (w.codes.float() * w.scale.float()[:, None]).to(w.dtype)
    q = torch.cat([w.codes & 15, w.codes >> 4], dim=1).float()  # (N, K), columns in order
    n, k = q.shape
    grouped = q.view(n, k // w.group, w.group) * w.scale.float()[..., None] + w.low.float()[..., None]
    return grouped.view(n, k).to(w.dtype)


# ---------------------------------------------------------------------------------------------
# Products


_KERNELS = None


def kernels():
    """fast/packed_kernel.py's launchers, or None where Triton is not installed."""
    global _KERNELS
    if _KERNELS is None:
        _KERNELS = kernel_or_false("infercomp.fast.packed_kernel")
    return _KERNELS or None


def on_kernel_device(x: torch.Tensor) -> bool:
    """Whether x's products run the Triton kernels: on CUDA, or under Triton's interpreter (tests),
    unless INFERCOMP_PACKED_KERNELS=0 (the dequantizing reference path, a knob for measuring)."""
    if os.environ.get("INFERCOMP_PACKED_KERNELS", "1") == "0":
        return False
    interpreting = os.environ.get("TRITON_INTERPRET") == "1"
    return (x.is_cuda or interpreting) and kernels() is not None


def linear(x: torch.Tensor, w: PackedWeight) -> torch.Tensor:
    """x (..., K) @ W.T -> (..., N) in x's dtype."""
    if not on_kernel_device(x):
        return F.linear(x, dequantize(w))
    lead = x.shape[:-1]
    flat = x.reshape(-1, w.in_features)
    if flat.shape[0] == 1:
        y = packed_gemv(flat, w.codes, w.scale, w.low, None, None, 0.0, 0, w.bits, w.group)
    else:
        y = packed_mm(flat, w.codes, w.scale, w.low, w.bits, w.group)
    return y.view(*lead, w.out_features)


@torch.library.custom_op("infercomp::packed_gemv", mutates_args=())
def packed_gemv(
    x: torch.Tensor,
    codes: torch.Tensor,
    scale: torch.Tensor,
    low: torch.Tensor | None,
    norm: torch.Tensor | None,
    residual: torch.Tensor | None,
    eps: float,
    prologue: int,
    bits: int,
    group: int,
) -> torch.Tensor:
    """One row: x (..., K) or (..., 2K) for fast.gemv.SILU -> (..., N); prologues as fast.gemv."""
    lead = x.shape[:-1]
    res = None if residual is None else residual.reshape(-1).contiguous()
    y = kernels().gemv(x.reshape(-1).contiguous(), codes, scale, low, norm, res, eps, prologue, bits, group)
    return y.view(*lead, codes.shape[0])


@packed_gemv.register_fake
def _(x, codes, scale, low, norm, residual, eps, prologue, bits, group):
    return x.new_empty(*x.shape[:-1], codes.shape[0])


@torch.library.custom_op("infercomp::packed_mm", mutates_args=())
def packed_mm(
    x: torch.Tensor, codes: torch.Tensor, scale: torch.Tensor, low: torch.Tensor | None, bits: int, group: int
) -> torch.Tensor:
    """Rows: x (M, K) -> (M, N)."""
    return kernels().mm(x.contiguous(), codes, scale, low, bits, group)


@packed_mm.register_fake
def _(x, codes, scale, low, bits, group):
    return x.new_empty(x.shape[0], codes.shape[0])


# ---------------------------------------------------------------------------------------------
# The transformers modules, for the reference engine and the quality figures


class PackedLinear(nn.Module):
    """Stands in for an nn.Linear whose weight is packed. Codes and scales are buffers, so
    `measure.memory.weight_bytes` counts them and `.to()` moves them; `models.parameter_count`
    counts out x in weights for it. A bias (q|k|v in Qwen2) stays in the model dtype."""

    def __init__(self, w: PackedWeight, bias: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("codes", w.codes)
        self.register_buffer("scale", w.scale)
        self.register_buffer("low", w.low)
        self.bias = None if bias is None else nn.Parameter(bias.detach(), requires_grad=False)
        self.bits, self.group, self.in_features, self.dtype = w.bits, w.group, w.in_features, w.dtype
        self.out_features = w.out_features

    @property
    def packed(self) -> PackedWeight:
        return PackedWeight(self.codes, self.scale, self.low, self.bits, self.group, self.in_features, self.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = linear(x, self.packed)
        return y if self.bias is None else y + self.bias


def can_pack(in_features: int, bits: int) -> bool:
    """Whether a weight with this input size fits the format (whole 32-bit words; int4 groups)."""
    if bits == 8:
        return in_features % 4 == 0
    return int4_group(in_features) is not None


def pack_model(model: nn.Module, bits: int) -> list[str]:
    """Replace the decoder layers' linears of a transformers model by PackedLinear, biases kept.
    Returns the names of those whose input size the format cannot pack (left as they are)."""
    names = [n for n, m in model.named_modules() if ".layers." in n and isinstance(m, nn.Linear)]
    left = []
    for name in names:
        module = model.get_submodule(name)
        if not can_pack(module.in_features, bits):
            left.append(name)
            continue
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, PackedLinear(pack(module.weight, bits), module.bias))
    return left


def point_modules(fused: PackedWeight, parent: nn.Module, names: list[str], bias: torch.Tensor | None = None) -> None:
    """Replace parent's linears `names` (in fused row order) by views of the fused rows (and of
    the fused bias, if any)."""
    start = 0
    for name in names:
        rows = getattr(parent, name).out_features
        part = None if bias is None else bias[start : start + rows]
        setattr(parent, name, PackedLinear(fused.rows(start, start + rows), part))
        start += rows
