"""Choosing tokens on the device, with no host synchronisation.

The same warping as the reference engine (`infercomp.speculative.draft_verify.warp`, transformers'
order: temperature, top-k, top-p) and the same EOS suppression as `min_new_tokens`, written as
tensor operations so they can sit inside a captured step. Deliberately not shared with the
reference engine's copy: the fast engine is tested against the reference, and shared code would
carry one bug into both sides of that test. Sampling uses the exponential trick:
argmax(p / E) with E ~ Exp(1) draws index i with probability p_i, without torch.multinomial's
host round trip.

Top-p without a sort: the kept set is every token whose probability is at least a threshold t*,
the largest t with mass(p >= t) >= top_p (the same set as transformers' sort-and-cumsum rule: a
token stays when the mass strictly above it is below top_p). t* is found exactly by a radix
search over the bit patterns of the float32 probabilities (non-negative floats order like their
bits): 8 passes of 3-4 bits, each one reduction over the vocabulary for 8-16 candidate thresholds.
A full-vocabulary sort cost 0.9 ms per step at batch 32 on an H100. In PyTorch operations each
pass materialises a (rows, 16, vocab) comparison (about 4.5 ms per step at 32 rows on an H100);
on CUDA Triton kernels run the same search reading the probabilities once per pass (from 32
rows in 16 passes of 2 bits, cheaper there: fast/top_p_kernel.py), and a
top-p draw (no top-k) ends in one more pass that keeps each chunk's best p / E among the kept
tokens, instead of a mask, a product, a quotient and an argmax over the whole vocabulary. Ties at
the threshold are all kept, where a sort keeps an arbitrary subset of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from infercomp.fast.triton_import import kernel_or_false


@dataclass(frozen=True)
class Choice:
    """How a call picks tokens."""

    do_sample: bool
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    compiled: bool = False  # warp and draw as compiled functions (CUDA)
    steps_compiled: bool = False  # the steps are compiled: the softmax before a top-p draw is too


def suppress(logits: torch.Tensor, eos: torch.Tensor | None, fresh: bool = False) -> torch.Tensor:
    """Fixed-length runs: EOS can never be chosen (what min_new_tokens does). (..., vocab)
    fresh: the logits are the caller's own new tensor, written in place (a copy of 32 x 151,936
    float32 logits is a 9.7 us kernel a step on an H100)."""
    if eos is None:
        return logits
    if fresh:
        return logits.index_fill_(-1, eos, float("-inf"))
    return logits.index_fill(-1, eos, float("-inf"))


def warp(logits: torch.Tensor, c: Choice) -> torch.Tensor:
    """Probabilities after temperature, top-k, then top-p. (..., vocab) float32."""
    return _maybe_compiled(_warp, c.compiled)(logits, c.temperature, c.top_k, c.top_p, True)


def _warp(logits: torch.Tensor, temperature: float, top_k: int, top_p: float, normalize: bool) -> torch.Tensor:
    """warp(), with the final renormalisation optional: a draw by argmax(p / E) does not need it.
    Logits in the model dtype are taken to float32 first (exactly), as the head's float32 copy was."""
    logits = logits.float() / temperature
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(-1)
    if top_p < 1.0:
        probs = probs * top_p_keep(probs, top_p)
        if normalize:
            probs = probs / probs.sum(-1, keepdim=True)
    return probs


def _draw(logits: torch.Tensor, noise: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """A token per row from the warped distribution: argmax(p / E), E ~ Exp(1). (..., vocab) -> (...)"""
    return (_warp(logits, temperature, top_k, top_p, False) / noise).argmax(-1)


def passes(bits: int) -> tuple[tuple[int, int], ...]:
    """(shift, width) of each pass from bit 30 down (bit 31 is the sign, 0 for every probability),
    `bits` wide except the last: passes(4) is ((27, 4), (23, 4), ..., (3, 4), (0, 3)). Shared with
    fast/top_p_kernel.py, whose digit width depends on the rows."""
    out, top = [], 31
    while top > 0:
        width = min(bits, top)
        top -= width
        out.append((top, width))
    return tuple(out)


_PASSES = passes(4)  # the PyTorch search's eight passes


def top_p_keep(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Which tokens top-p keeps: probs (..., vocab) float32 -> bool (..., vocab). On CUDA with
    Triton: fast/top_p_kernel.py, the same search without (..., 16, vocab) temporaries."""
    on_device = probs.is_cuda or (TOP_P_ON_CPU and os.environ.get("TRITON_INTERPRET") == "1")
    # inside torch.compile (INFERCOMP_FAST_COMPILE_SAMPLING=1) the compiler fuses the PyTorch passes
    kernel = _top_p_kernel() if on_device and not torch.compiler.is_compiling() else None
    if kernel is not None:
        return kernel(probs, top_p)
    return top_p_keep_eager(probs, top_p)


_TOP_P = None
TOP_P_ON_CPU = False  # tests: CPU tensors through the kernels in Triton's interpreter (as fast.attend.ON_CPU)


def _top_p_kernel():
    """fast/top_p_kernel.py's search, or None where Triton is not installed or
    INFERCOMP_FAST_TOP_P=eager (the knob that measures what it buys)."""
    global _TOP_P
    if os.environ.get("INFERCOMP_FAST_TOP_P", "kernel") != "kernel":
        return None
    if _TOP_P is None:
        _TOP_P = kernel_or_false("infercomp.fast.top_p_kernel", "top_p_keep")
    return _TOP_P or None


def top_p_keep_eager(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """top_p_keep in PyTorch operations: each pass compares every probability with 8-16
    candidates at once ((..., 16, vocab) temporaries: fine on CPU, heavy at 32 rows on a GPU)."""
    bits = probs.contiguous().view(torch.int32)  # order-preserving for p >= 0
    threshold = torch.zeros(probs.shape[:-1] + (1,), dtype=torch.int32, device=probs.device)
    for shift, width in _PASSES:
        digits = torch.arange(1 << width, dtype=torch.int32, device=probs.device)
        candidates = threshold | (digits << shift)  # (..., 2^width), ascending
        at_or_above = bits[..., None, :] >= candidates[..., :, None]  # (..., 2^width, vocab)
        mass = torch.where(at_or_above, probs[..., None, :], 0.0).sum(-1)  # (..., 2^width)
        # passing candidates are a prefix (mass falls as the threshold rises); candidate 0 is the
        # threshold so far, which passed before (clamped: a rounded sum may miss top_p near 1)
        best = ((mass >= top_p).sum(-1, keepdim=True) - 1).clamp(min=0)  # (..., 1)
        threshold = threshold | (best.to(torch.int32) << shift)
    return bits >= threshold


_COMPILED: dict = {}


def _maybe_compiled(fn, compiled: bool):
    """On CUDA the warping is one compiled function: fused passes over the (rows, vocab) floats
    instead of an eager kernel per operation (the noise stays eager: drawn by PyTorch's generator,
    which CUDA-graph capture knows how to advance)."""
    if not compiled:
        return fn
    if fn not in _COMPILED:
        _COMPILED[fn] = torch.compile(fn, dynamic=False, fullgraph=True)
    return _COMPILED[fn]


def sample(probs: torch.Tensor) -> torch.Tensor:
    """One index per row drawn from probs (..., vocab) -> (...)."""
    noise = torch.empty_like(probs).exponential_()
    return (probs / noise).argmax(-1)


def choose(logits: torch.Tensor, c: Choice, eos: torch.Tensor | None, fresh: bool = False) -> torch.Tensor:
    """Greedy argmax or a sample, per row. logits (..., vocab) in float32 or the model dtype (the
    argmax of bf16 logits is that of their exact float32 copies; sampling takes them to float32
    first) -> token ids (...). fresh: see suppress."""
    logits = suppress(logits, eos, fresh)
    if not c.do_sample:
        return logits.argmax(-1)
    noise = torch.empty(logits.shape, dtype=torch.float32, device=logits.device).exponential_()
    draw = _top_p_draw(logits, c)
    if draw is not None:
        probs = _maybe_compiled(_probabilities, c.steps_compiled)(logits, c.temperature)
        return draw(probs, noise, c.top_p)
    return _maybe_compiled(_draw, c.compiled)(logits, noise, c.temperature, c.top_k, c.top_p)


def _probabilities(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(logits / T) in float32: _warp without top-k and top-p (the draw applies top-p)."""
    return _warp(logits, temperature, 0, 1.0, False)


_DRAW = None


def _top_p_draw(logits: torch.Tensor, c: Choice):
    """fast/top_p_kernel.py's top_p_draw where it serves this choice (top-p without top-k, the
    warp not compiled whole, the kernels available for this device), else None. It replaces the
    mask, the product, the quotient and the argmax of _draw by one pass and a small argmax; with
    the softmax compiled from bf16 logits, Qwen3-4B's nucleus step at 32 rows on an H100 went
    4.692 -> 4.606 ms, those kernels 126 -> 47 us (docs/measurements/2026-11-28-h100-draw, call-2)."""
    global _DRAW
    if c.top_k or c.top_p >= 1.0 or c.compiled or _top_p_kernel() is None:
        return None
    if not (logits.is_cuda or (TOP_P_ON_CPU and os.environ.get("TRITON_INTERPRET") == "1")):
        return None
    if _DRAW is None:
        _DRAW = kernel_or_false("infercomp.fast.top_p_kernel", "top_p_draw")
    return _DRAW or None


def distribution(logits: torch.Tensor, c: Choice, eos: torch.Tensor | None, fresh: bool = False) -> torch.Tensor:
    """What a token is drawn from: warped probabilities (float32), or (greedy) the logits
    themselves, whose argmax is the choice. (..., vocab). fresh: see suppress."""
    logits = suppress(logits, eos, fresh)
    return warp(logits, c) if c.do_sample else logits
