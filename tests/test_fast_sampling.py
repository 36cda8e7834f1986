"""The fast engine's top-p search against transformers' sort-and-cumsum rule."""

from __future__ import annotations

import pytest
import torch

from infercomp.fast.sampling import Choice, top_p_keep, warp
from infercomp.speculative.draft_verify import Sampling
from infercomp.speculative.draft_verify import warp as reference_warp


def sort_rule_keep(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """transformers' rule: sort ascending, drop tokens whose cumulative mass is <= 1 - top_p."""
    sorted_p, order = probs.sort(-1)
    drop_sorted = sorted_p.cumsum(-1) <= 1 - top_p
    drop_sorted[..., -1:] = False
    return ~drop_sorted.scatter(-1, order, drop_sorted)


@pytest.mark.parametrize("seed", range(5))
def test_top_p_search_keeps_the_sort_rule_set(seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(40):
        vocab = int(torch.randint(2, 4000, (), generator=g))
        probs = (torch.randn(3, vocab, generator=g) * float(torch.rand((), generator=g) * 8)).softmax(-1)
        top_p = float(torch.rand((), generator=g)) * 0.999
        assert torch.equal(top_p_keep(probs, top_p), sort_rule_keep(probs, top_p)), (vocab, top_p)


def test_top_p_keeps_every_token_tied_at_the_threshold():
    probs = torch.tensor([[0.4, 0.2, 0.2, 0.1, 0.1]])
    # the sort rule keeps 0.4 and one arbitrary 0.2 for top_p 0.5; the search keeps both 0.2s
    assert top_p_keep(probs, 0.5).tolist() == [[True, True, True, False, False]]
    assert top_p_keep(probs, 0.4).tolist() == [[True, False, False, False, False]]
    assert top_p_keep(probs, 0.41).sum().item() == 3


def test_warped_distribution_equals_the_reference_engine():
    g = torch.Generator().manual_seed(7)
    logits = torch.randn(4, 3000, generator=g) * 4
    for top_k, top_p in [(0, 0.9), (50, 0.8), (0, 0.3), (20, 1.0)]:
        ours = warp(logits, Choice(True, temperature=0.7, top_k=top_k, top_p=top_p))
        ref = reference_warp(logits, Sampling(True, temperature=0.7, top_k=top_k, top_p=top_p))
        torch.testing.assert_close(ours, ref, atol=1e-6, rtol=1e-5)
