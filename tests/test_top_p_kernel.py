"""The top-p search's Triton kernels (fast/top_p_kernel.py) against the PyTorch version and the
sort rule, through Triton's CPU interpreter. Skipped where Triton is not installed (as
tests/test_fast_gemv.py); on a GPU, the sampled engine tests run them compiled."""

from __future__ import annotations

import pytest
import torch

from triton_interpreter import interpret_or_skip

interpret_or_skip()

import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from infercomp.fast import sampling, top_p_kernel  # noqa: E402


@pytest.fixture(autouse=True)
def on_cpu(monkeypatch):
    """CPU tensors through the kernels in the interpreter (off by default, see fast.sampling)."""
    monkeypatch.setattr(sampling, "TOP_P_ON_CPU", True)


from test_fast_sampling import sort_rule_keep  # noqa: E402


def random_rows(seed: int, vocab: int):
    g = torch.Generator().manual_seed(seed)
    sharpness = float(torch.rand((), generator=g) * 8)
    return (torch.randn(3, vocab, generator=g) * sharpness).softmax(-1), float(torch.rand((), generator=g)) * 0.999


# vocabularies below one chunk, of several chunks, and not a multiple of the block
@pytest.mark.parametrize("seed, vocab", [(0, 300), (1, 4096), (2, 9000), (3, 12289)])
def test_the_kernels_keep_the_same_set(seed, vocab):
    probs, top_p = random_rows(seed, vocab)
    got = top_p_kernel.top_p_keep(probs, top_p)
    assert got.dtype == torch.bool and got.shape == probs.shape
    assert torch.equal(got, sampling.top_p_keep_eager(probs, top_p))
    assert torch.equal(got, sort_rule_keep(probs, top_p))


def test_top_p_keep_takes_the_kernels_where_they_run(monkeypatch):
    calls = []
    monkeypatch.setattr(sampling, "_TOP_P", lambda p, t: calls.append(t) or top_p_kernel.top_p_keep(p, t))
    probs, top_p = random_rows(4, 500)
    assert torch.equal(sampling.top_p_keep(probs, top_p), sort_rule_keep(probs, top_p)) and calls == [top_p]
    monkeypatch.setenv("INFERCOMP_FAST_TOP_P", "eager")
    sampling.top_p_keep(probs, top_p)
    assert calls == [top_p]  # the knob keeps the PyTorch version
    monkeypatch.delenv("INFERCOMP_FAST_TOP_P")
    monkeypatch.setattr(sampling, "TOP_P_ON_CPU", False)
    sampling.top_p_keep(probs, top_p)
    assert calls == [top_p]  # CPU tensors without the interpreter asked for: PyTorch


@triton.jit
def forgets_the_last_pass(part_ptr, thr_ptr, row, chunk, chunks, top_p, PASS: tl.constexpr, CHUNKS_P2: tl.constexpr):
    """A mutant of threshold_so_far: the bits of the latest pass are left out."""
    return top_p_kernel.threshold_so_far_real(part_ptr, thr_ptr, row, chunk, chunks, top_p, PASS - 1, CHUNKS_P2)


def test_a_search_that_drops_a_pass_is_caught(monkeypatch):
    probs, _ = random_rows(5, 3000)
    monkeypatch.setattr(top_p_kernel, "threshold_so_far_real", top_p_kernel.threshold_so_far, raising=False)
    monkeypatch.setattr(top_p_kernel, "threshold_so_far", forgets_the_last_pass)
    assert not torch.equal(top_p_kernel.top_p_keep(probs, 0.9), sort_rule_keep(probs, 0.9))
