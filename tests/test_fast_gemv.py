"""The fused single-row products (fast/gemv.py) against the unfused reference, through Triton's
CPU interpreter. Skipped where Triton is not installed (CPU builds of torch come without it; to run
them: `pip install triton==3.6.0 "numpy<2.3"`, whose interpreter needs the older numpy). On a GPU,
tests/test_fast_engine_gpu.py checks the compiled kernel token for token in float32."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from triton_interpreter import interpret_or_skip

interpret_or_skip()

import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from infercomp.fast import gemv, gemv_kernel  # noqa: E402
from infercomp.fast.model import rms_norm  # noqa: E402


@pytest.fixture
def interpreted(monkeypatch):
    monkeypatch.setattr(gemv, "_KERNEL", None)
    monkeypatch.setattr(gemv, "READY", False)
    assert gemv.prepare(torch.device("cpu"))
    yield
    monkeypatch.setattr(gemv, "_KERNEL", None)


def reference(x, weight, norm, residual, eps, prologue):
    """The unfused layers in the model dtype: (output, the allowed difference per element)."""
    if prologue == gemv.RMSNORM:
        x = rms_norm(x, norm, eps)
    elif prologue == gemv.SILU:
        g, u = x.chunk(2, dim=-1)
        x = F.silu(g) * u
    y = F.linear(x, weight)
    # Both sides round the activated row, the product and its sum with the residual to the
    # model dtype (bf16: 8 significant bits, Triton's CPU interpreter truncating where the GPU
    # rounds to nearest): a rounding of each term costs at most one unit u of |w| . |x|, of |y|,
    # of |y + r|; allow 2u.
    u = {torch.bfloat16: 2**-7, torch.float16: 2**-10, torch.float32: 2**-23}[x.dtype]
    slack = 2 * u * (F.linear(x.float().abs(), weight.float().abs()) + y.float().abs()) + 1e-6
    if residual is None:
        return y, slack
    return residual + y, slack + 2 * u * (residual + y).float().abs()


# N and K not multiples of the block sizes: the masked edges are exercised.
@pytest.mark.parametrize("prologue", [gemv.NONE, gemv.RMSNORM, gemv.SILU])
@pytest.mark.parametrize("with_residual", [False, True])
def test_fused_product_matches_the_unfused_layers(interpreted, prologue, with_residual):
    torch.manual_seed(0)
    n, k = 37, 300
    width = 2 * k if prologue == gemv.SILU else k
    x = torch.randn(1, 1, width, dtype=torch.bfloat16)
    weight = (torch.randn(n, k) / k**0.5).to(torch.bfloat16)
    norm = (1 + 0.1 * torch.randn(k)).to(torch.bfloat16) if prologue == gemv.RMSNORM else None
    residual = torch.randn(1, 1, n, dtype=torch.bfloat16) if with_residual else None
    got = gemv.gemv(x, weight, norm, residual, 1e-6, prologue)
    want, slack = reference(x, weight, norm, residual, 1e-6, prologue)
    assert got.shape == (1, 1, n) and got.dtype == torch.bfloat16
    assert ((got.float() - want.float()).abs() <= slack).all(), (got - want).abs().max()


@pytest.mark.parametrize("prologue", [gemv.NONE, gemv.RMSNORM, gemv.SILU])
@pytest.mark.parametrize("dtype, n, k", [(torch.float32, 19, 40), (torch.float16, 33, 520)])
def test_fused_product_in_float32_and_float16_small_and_odd_shapes(interpreted, prologue, dtype, n, k):
    """float32: the same sum up to its order (tight); an input whose mean square is near eps, so a
    kernel that dropped or misplaced eps, or divided by the wrong count, fails; K below one block."""
    torch.manual_seed(2)
    width = 2 * k if prologue == gemv.SILU else k
    x = (0.1 * torch.randn(1, 1, width)).to(dtype)  # mean square near eps: both matter
    weight = (torch.randn(n, k) / k**0.5).to(dtype)
    norm = (1 + 0.1 * torch.randn(k)).to(dtype) if prologue == gemv.RMSNORM else None
    residual = (1e-3 * torch.randn(1, 1, n)).to(dtype)
    got = gemv.gemv(x, weight, norm, residual, 1e-2, prologue)
    want, slack = reference(x, weight, norm, residual, 1e-2, prologue)
    assert ((got.float() - want.float()).abs() <= slack).all(), (got - want).abs().max()


def test_a_wrong_prologue_is_caught(interpreted):
    """The comparison above can fail: the rmsnorm prologue without its norm weight differs."""
    torch.manual_seed(1)
    k = 300
    x = torch.randn(1, 1, k, dtype=torch.bfloat16)
    weight = (torch.randn(20, k) / k**0.5).to(torch.bfloat16)
    norm = (1 + 0.5 * torch.randn(k)).to(torch.bfloat16)
    got = gemv.gemv(x, weight, torch.ones_like(norm), None, 1e-6, gemv.RMSNORM)
    want, slack = reference(x, weight, norm, None, 1e-6, gemv.RMSNORM)
    assert not ((got.float() - want.float()).abs() <= slack).all()


def test_only_one_row_of_plain_weights_is_served(interpreted):
    w = torch.zeros(4, 4)
    assert gemv.serves(torch.zeros(1, 1, 4), w)
    assert not gemv.serves(torch.zeros(2, 1, 4), w)  # two rows: the matrix-matrix kernels
    assert not gemv.serves(torch.zeros(1, 5, 4), w)  # a 5-token verify block
    assert not gemv.serves(torch.zeros(1, 1, 4), torch.nn.Parameter(w))  # not a plain tensor
    assert not gemv.serves(torch.zeros(1, 1, 4), w.to(torch.float16))  # codes of another dtype
    assert not gemv.serves(torch.zeros(1, 1, 4), torch.zeros(4, 8)[:, ::2])  # not contiguous


def test_the_engine_routes_one_row_through_the_kernel_and_keeps_its_tokens(interpreted, monkeypatch):
    """A tiny Qwen3 in float32 on the fast engine (uncompiled on CPU): with the kernel serving its
    one-row products, greedy tokens equal those of the plain products, and the kernel did run."""
    from test_fast_engine import tiny_engine

    fast = tiny_engine(1)
    monkeypatch.setattr(gemv, "READY", False)
    plain = [r.token_ids for r in fast.generate([0], do_sample=False).rows]
    calls = []
    launch = gemv._kernel()
    monkeypatch.setattr(gemv, "_KERNEL", lambda *a: calls.append(a[4:]) or launch(*a))
    monkeypatch.setattr(gemv, "READY", True)
    fused = [r.token_ids for r in fast.generate([0], do_sample=False).rows]
    new = len(plain[0])
    assert fused == plain and new >= 5
    # 2 layers x 4 products per decode step (the prompt's block of tokens takes the plain path)
    assert len(calls) == 2 * 4 * (new - 1)
    assert {prologue for _, prologue in calls} == {gemv.NONE, gemv.RMSNORM, gemv.SILU}


@pytest.mark.parametrize("split, block_k", [(2, 64), (4, 32), (8, 128)])
@pytest.mark.parametrize("prologue", [gemv.NONE, gemv.RMSNORM, gemv.SILU])
def test_column_splits_give_the_unsplit_sums(interpreted, split, block_k, prologue):
    """SPLIT programs per row block, the last to arrive adding the partials: float32 results
    equal the unsplit kernel's up to the order of the sums, including a split whose share runs
    past K (8 x 128 columns for K = 300) and row blocks past N. The counts are zero afterwards,
    ready for the next launch."""
    torch.manual_seed(3)
    n, k = 37, 300
    width = 2 * k if prologue == gemv.SILU else k
    x = torch.randn(width)
    weight = torch.randn(n, k) / k**0.5
    norm = 1 + 0.1 * torch.randn(k) if prologue == gemv.RMSNORM else None
    residual = torch.randn(n)
    config = {"BLOCK_N": 8, "BLOCK_K": block_k, "SPLIT": split}
    got = gemv_kernel.launch(x, weight, norm, residual, 1e-6, prologue, config)
    want, slack = reference(x[None, None], weight, norm, residual[None, None], 1e-6, prologue)
    assert torch.allclose(got, want.view(-1), rtol=0, atol=4 * slack.max().item())
    assert not gemv_kernel.counts(x.device).any()


@triton.jit
def every_program_stores(part, res_ptr, y_ptr, part_ptr, count_ptr, rows, row_ok, N, dtype: tl.constexpr,
                         RESIDUAL: tl.constexpr, SPLIT: tl.constexpr):  # fmt: skip
    """A mutant of gemv_kernel.finish_rows: the reduction of the partials forgotten."""
    gemv_kernel.store_rows(part.to(dtype), res_ptr, y_ptr, rows, row_ok, dtype, RESIDUAL)


def test_a_split_without_its_reduction_is_caught(interpreted, monkeypatch):
    """The split comparison can fail: with every program storing its own partial sums as the
    result (the reduction forgotten), the product is wrong."""
    torch.manual_seed(4)
    x, weight = torch.randn(256), torch.randn(16, 256) / 16
    config = {"BLOCK_N": 8, "BLOCK_K": 64, "SPLIT": 4}
    right = gemv_kernel.launch(x, weight, None, None, 1e-6, gemv.NONE, config)
    monkeypatch.setattr(gemv_kernel, "finish_rows", every_program_stores)
    wrong = gemv_kernel.launch(x, weight, None, None, 1e-6, gemv.NONE, config)
    assert torch.allclose(right, weight @ x, atol=1e-4)
    assert not torch.allclose(wrong, weight @ x, atol=1e-2)
