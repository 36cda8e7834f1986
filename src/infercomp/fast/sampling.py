"""Choosing tokens on the device, with no host synchronisation.

The same warping as the reference engine (`infercomp.speculative.draft_verify.warp`, transformers'
order: temperature, top-k, top-p) and the same EOS suppression as `min_new_tokens`, written as
tensor operations so they can sit inside a captured step. Deliberately not shared with the
reference engine's copy: the fast engine is tested against the reference, and shared code would
carry one bug into both sides of that test. Sampling uses the exponential trick:
argmax(p / E) with E ~ Exp(1) draws index i with probability p_i, without torch.multinomial's
host round trip.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Choice:
    """How a call picks tokens."""

    do_sample: bool
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0


def suppress(logits: torch.Tensor, eos: torch.Tensor | None) -> torch.Tensor:
    """Fixed-length runs: EOS can never be chosen (what min_new_tokens does). (..., vocab)"""
    if eos is None:
        return logits
    return logits.index_fill(-1, eos, float("-inf"))


def warp(logits: torch.Tensor, c: Choice) -> torch.Tensor:
    """Probabilities after temperature, top-k, then top-p. (..., vocab) float32."""
    logits = logits / c.temperature
    if c.top_k and c.top_k < logits.shape[-1]:
        kth = torch.topk(logits, c.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if c.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=False, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        remove_sorted = cum <= (1 - c.top_p)
        remove_sorted[..., -1:] = False  # the most likely token always stays
        remove = remove_sorted.scatter(-1, order, remove_sorted)
        logits = logits.masked_fill(remove, float("-inf"))
    return logits.softmax(-1)


def sample(probs: torch.Tensor) -> torch.Tensor:
    """One index per row drawn from probs (..., vocab) -> (...)."""
    noise = torch.empty_like(probs).exponential_()
    return (probs / noise).argmax(-1)


def choose(logits: torch.Tensor, c: Choice, eos: torch.Tensor | None) -> torch.Tensor:
    """Greedy argmax or a sample, per row. logits (..., vocab) -> token ids (...)."""
    logits = suppress(logits, eos)
    if not c.do_sample:
        return logits.argmax(-1)
    return sample(warp(logits, c))


def distribution(logits: torch.Tensor, c: Choice, eos: torch.Tensor | None) -> torch.Tensor:
    """What a token is drawn from: warped probabilities, or (greedy) the logits themselves, whose
    argmax is the choice. (..., vocab) float32."""
    logits = suppress(logits, eos)
    return warp(logits, c) if c.do_sample else logits
