"""infercomp's few-row products (fast/rows_kernel.py) against float32 products, through Triton's
CPU interpreter, in float16 (the interpreter's bfloat16 tl.dot returns garbage; on the GPU,
tests/test_fast_engine_gpu.py checks bfloat16 at Qwen3-4B's shapes). Skipped where Triton is not
installed (CPU builds of torch come without it; to run them: `pip install triton==3.6.0
"numpy<2.3"`)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from triton_interpreter import interpret_or_skip

interpret_or_skip()

from infercomp.fast import rows_kernel  # noqa: E402

# Blocks far smaller than the shapes, so each launch has several row blocks, column steps and
# parts, a last row block and column step cut short, and input rows short of the tile.
SMALL = dict(BLOCK_N=16, BLOCK_K=32, num_warps=4, num_stages=2)


def _within_float16(got: torch.Tensor, want: torch.Tensor) -> None:
    """Within two float16 roundings of the largest value (float32 sums of float16 products)."""
    assert got.shape == want.shape
    assert (got.float() - want).abs().max().item() <= 2 * 2**-10 * want.abs().max().item()


@pytest.mark.parametrize("rows", [1, 5, 16, 33])
@pytest.mark.parametrize("split", [1, 2, 3])
def test_the_product_of_a_few_rows(rows, split):
    torch.manual_seed(rows * 10 + split)
    x, w = torch.randn(rows, 200, dtype=torch.float16), torch.randn(72, 200, dtype=torch.float16)
    y = rows_kernel.launch(x, w, dict(SMALL, SPLIT=split))
    want = x.float() @ w.float().T
    if split == 1:
        assert y.dtype == torch.float16
        _within_float16(y, want)
    else:  # float32 parts, each the product over its own share of the columns
        assert y.shape == (split, rows, 72) and y.dtype == torch.float32
        assert torch.allclose(y.sum(0), want, rtol=1e-4, atol=1e-3)
        share = 128 if split == 2 else 96  # whole 32-column steps: 200 / 2 -> 128 + 72, 200 / 3 -> 96 + 96 + 8
        assert torch.allclose(y[1], x[:, share : 2 * share].float() @ w[:, share : 2 * share].float().T, atol=1e-3)


def test_every_output_is_written():
    """No output left as the allocator handed it over: unwritten values would be whatever was
    there (here NaN), and the consumer would add them in."""
    torch.manual_seed(1)
    x, w = torch.randn(3, 96, dtype=torch.float16), torch.randn(40, 96, dtype=torch.float16)
    y = torch.full((2, 3, 40), float("nan"))
    rows_kernel.rows_body[(3, 2)](x, w, y, 3, 40, 96, BLOCK_M=16, SPLIT=2, **SMALL)
    assert not y.isnan().any()
    assert torch.allclose(y.sum(0), x.float() @ w.float().T, atol=1e-3)


@pytest.mark.parametrize("rows", [2, 32])
def test_the_gated_product_is_silu_gate_times_up(rows):
    """gate|up's product and its activation in one kernel: the unfused formula on the float16
    products (the kernel rounds gate and up as the separate product would)."""
    torch.manual_seed(rows)
    x, w = torch.randn(rows, 160, dtype=torch.float16), torch.randn(2 * 40, 160, dtype=torch.float16) / 8
    got = rows_kernel.gated_launch(x, w, dict(SMALL))
    gate, up = F.linear(x, w).chunk(2, dim=-1)
    want = (F.silu(gate.float()) * up.float()).to(torch.float16)
    assert got.shape == (rows, 40) and got.dtype == torch.float16
    assert (got.float() - want.float()).abs().max().item() <= 2 * 2**-10 * want.abs().max().item()
    swapped = torch.cat(w.chunk(2)[::-1])  # a weight whose halves are the other way round
    assert not torch.allclose(rows_kernel.gated_launch(x, swapped, dict(SMALL)).float(), want.float(), atol=0.05)


def test_the_autotuned_launches_use_the_interpreter_config():
    torch.manual_seed(2)
    x, w = torch.randn(4, 64, dtype=torch.float16), torch.randn(64, 64, dtype=torch.float16)
    _within_float16(rows_kernel.launch(x, w, {"SPLIT": 1}), x.float() @ w.float().T)
    gate, up = F.linear(x, w).chunk(2, dim=-1)
    _within_float16(rows_kernel.gated_launch(x, w), F.silu(gate.float()) * up.float())
