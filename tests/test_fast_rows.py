"""The fused products of a few rows (fast/rows.py) against the unfused reference, through Triton's
CPU interpreter (float32 and float16: the interpreter's bfloat16 products are not the GPU's).
Skipped where Triton is not installed; to run them: `pip install triton==3.6.0 "numpy<2.3"`. On a
GPU, tests/test_fast_engine_gpu.py checks the compiled kernel token for token in float32 at
batch 4 and 8, where every decode step goes through it."""

from __future__ import annotations

import pytest
import torch

from triton_interpreter import interpret_or_skip

interpret_or_skip()

import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from infercomp.fast import gemv, rows, rows_kernel  # noqa: E402
from test_fast_gemv import reference  # noqa: E402


@pytest.fixture
def interpreted(monkeypatch):
    monkeypatch.setattr(rows, "_KERNEL", None)
    monkeypatch.setattr(rows, "READY", False)
    assert rows.prepare(torch.device("cpu"))
    yield
    monkeypatch.setattr(rows, "_KERNEL", None)


def inputs(m, n, k, prologue, dtype, seed=0):
    """x (m, 1, K or 2K) scaled so that its mean square is near eps (a kernel that drops eps, or
    divides by the wrong count, fails); weight (n, k); norm or None; residual (m, 1, n)."""
    torch.manual_seed(seed)
    width = 2 * k if prologue == gemv.SILU else k
    x = (0.1 * torch.randn(m, 1, width)).to(dtype)
    weight = (torch.randn(n, k) / k**0.5).to(dtype)
    norm = (1 + 0.1 * torch.randn(k)).to(dtype) if prologue == gemv.RMSNORM else None
    residual = (1e-3 * torch.randn(m, 1, n)).to(dtype)
    return x, weight, norm, residual


# M below, at and past a 16-row block; N and K not multiples of the block sizes.
@pytest.mark.parametrize("prologue", [gemv.NONE, gemv.RMSNORM, gemv.SILU])
@pytest.mark.parametrize("dtype, m, n, k", [(torch.float32, 5, 37, 300), (torch.float32, 19, 70, 130),
                                            (torch.float16, 2, 33, 200)])  # fmt: skip
def test_fused_rows_match_the_unfused_layers(interpreted, prologue, dtype, m, n, k):
    x, weight, norm, residual = inputs(m, n, k, prologue, dtype)
    got = rows.product(x, weight, norm, residual, 1e-2, prologue)
    want, slack = reference(x, weight, norm, residual, 1e-2, prologue)
    assert got.shape == (m, 1, n) and got.dtype == dtype
    assert ((got.float() - want.float()).abs() <= slack).all(), (got - want).abs().max()


@pytest.mark.parametrize("split", [2, 4])
@pytest.mark.parametrize("prologue", [gemv.NONE, gemv.SILU])
def test_column_splits_give_the_unsplit_sums(interpreted, split, prologue):
    """SPLIT programs per row block, the last to arrive adding the partials, with a share running
    past K and row blocks past N; the arrival counts are zero afterwards."""
    x, weight, norm, residual = inputs(6, 70, 300, prologue, torch.float32, seed=3)
    config = {"BLOCK_N": 32, "BLOCK_K": 64, "SPLIT": split}
    got = rows_kernel.launch(x[:, 0], weight, norm, residual[:, 0], 1e-6, prologue, config)
    want, slack = reference(x, weight, norm, residual, 1e-6, prologue)
    assert torch.allclose(got, want[:, 0], rtol=0, atol=4 * slack.max().item())
    assert not rows_kernel.counts(x.device).any()


@triton.jit
def first_row_scale(x_rows, tok_ok, K, eps, PROLOGUE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
    """A mutant of rows_kernel.token_scales: every row normalised by the first row's scale."""
    scale = rows_kernel.token_scales(x_rows, tok_ok, K, eps, PROLOGUE, BLOCK_M, BLOCK_K)
    if PROLOGUE == 1:
        first = tl.sum(tl.where(tl.arange(0, BLOCK_M)[:, None] == 0, scale, 0.0), axis=0)
        scale = tl.broadcast_to(first[None, :], (BLOCK_M, 1))
    return scale


def test_a_norm_shared_across_rows_is_caught(interpreted, monkeypatch):
    """The comparison can fail: a kernel that normalises every row by one row's statistics (rows of
    different scales here) is wrong."""
    x, weight, norm, residual = inputs(4, 40, 128, gemv.RMSNORM, torch.float32, seed=5)
    x = x * torch.tensor([1.0, 3.0, 0.5, 2.0])[:, None, None]
    want, slack = reference(x, weight, norm, None, 1e-6, gemv.RMSNORM)
    right = rows.product(x, weight, norm, None, 1e-6, gemv.RMSNORM)
    monkeypatch.setattr(rows_kernel, "token_scales", first_row_scale)
    wrong = rows.product(x, weight, norm, None, 1e-6, gemv.RMSNORM)
    assert ((right - want).abs() <= slack).all()
    assert not ((wrong - want).abs() <= slack).all()


def test_two_to_sixty_four_rows_of_plain_weights_are_served(interpreted):
    w = torch.zeros(4, 4)
    assert rows.serves(torch.zeros(2, 1, 4), w)
    assert rows.serves(torch.zeros(1, 5, 4), w)  # a 5-token verify block
    assert rows.serves(torch.zeros(32, 2, 4), w)
    assert not rows.serves(torch.zeros(1, 1, 4), w)  # one row: fast.gemv
    assert not rows.serves(torch.zeros(13, 5, 4), w)  # 65 rows: a prefill's block, cuBLAS
    assert not rows.serves(torch.zeros(2, 1, 4), w.to(torch.float16))
    assert not rows.serves(torch.zeros(2, 1, 4), torch.zeros(4, 8)[:, ::2])  # not contiguous


def test_the_engine_routes_a_batch_through_the_kernel_and_keeps_its_tokens(interpreted, monkeypatch):
    """A tiny Qwen3 in float32 at batch 3 on the fast engine (uncompiled on CPU): with the kernel
    serving the decode steps' products, greedy tokens equal those of the plain products, and the
    kernel did run with every prologue."""
    from test_fast_engine import tiny_engine

    fast = tiny_engine(3)
    monkeypatch.setattr(rows, "READY", False)
    plain = [r.token_ids for r in fast.generate([0, 1, 2], do_sample=False).rows]
    calls = []
    launch = rows._kernel()
    monkeypatch.setattr(rows, "_KERNEL", lambda *a: calls.append(a[5]) or launch(*a))
    monkeypatch.setattr(rows, "READY", True)
    fused = [r.token_ids for r in fast.generate([0, 1, 2], do_sample=False).rows]
    assert fused == plain and min(len(t) for t in plain) >= 5
    assert calls and len(calls) % (2 * 4) == 0  # 2 layers x 4 products a step
    assert set(calls) == {gemv.NONE, gemv.RMSNORM, gemv.SILU}
