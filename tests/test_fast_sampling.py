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


def test_eos_suppression_copies_unless_the_logits_are_fresh():
    from infercomp.fast.sampling import suppress

    logits, eos = torch.zeros(2, 6), torch.tensor([1, 4])
    out = suppress(logits, eos)
    assert torch.equal(logits, torch.zeros(2, 6)) and out[:, [1, 4]].eq(float("-inf")).all()
    fresh = suppress(logits, eos, fresh=True)
    assert fresh is logits and logits[:, [1, 4]].eq(float("-inf")).all() and logits[:, 0].eq(0).all()


def test_greedy_choice_of_model_dtype_logits_is_that_of_their_float32_copy():
    """bf16 logits (ties included: bf16 rounds many values together) pick the token their exact
    float32 copy picks, EOS suppressed in both."""
    from infercomp.fast.sampling import choose

    torch.manual_seed(13)
    logits = (torch.randn(8, 1000) * 4).bfloat16()
    eos = torch.tensor([int(logits[0].float().argmax())])  # suppress row 0's winner
    want = choose(logits.float(), Choice(do_sample=False), eos)
    assert torch.equal(choose(logits.clone(), Choice(do_sample=False), eos, fresh=True), want)
    assert int(want[0]) != int(eos[0])


def test_the_head_returns_model_dtype_logits_only_when_asked():
    from infercomp.fast.model import head_logits

    x, head = torch.randn(2, 1, 16, dtype=torch.bfloat16), torch.randn(40, 16, dtype=torch.bfloat16)
    assert head_logits(head, x, compiled=False).dtype == torch.float32
    low = head_logits(head, x, compiled=False, float32=False)
    assert low.dtype == torch.bfloat16 and torch.equal(low.float(), head_logits(head, x, compiled=False))


def test_choice_of_records_whether_the_steps_compile(monkeypatch):
    from infercomp.fast.options import choice_of

    sampled = dict(do_sample=True, temperature=0.7, top_p=0.9)
    assert choice_of(sampled, True).steps_compiled and not choice_of(sampled, False).steps_compiled
    assert not choice_of(sampled, True).compiled  # the whole warp compiled only on request
    monkeypatch.setenv("INFERCOMP_FAST_COMPILE_SAMPLING", "1")
    assert choice_of(sampled, True).compiled and not choice_of(sampled, False).compiled
    assert choice_of(dict(do_sample=False), True) == Choice(do_sample=False)
