"""The Triton kernels of infercomp's int8 / int4 formats (fast/packed_kernel.py) against the
dequantized reference (fast.packed.dequantize, then PyTorch), through Triton's CPU interpreter.
Skipped where Triton is not installed, like tests/test_fast_gemv.py (the same reasons); on a GPU,
tests/test_fast_engine_gpu.py runs them compiled."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from triton_interpreter import interpret_or_skip

interpret_or_skip()

from infercomp.fast import gemv, packed  # noqa: E402
from infercomp.fast.model import rms_norm  # noqa: E402

# float16, not bfloat16: the interpreter's bfloat16 dot products are wrong (numpy has no bfloat16)
UNIT = {torch.float16: 2**-10, torch.float32: 2**-23}


def reference(x, p, norm, residual, eps, prologue):
    """The unfused layers over the dequantized weight: (output, allowed difference per element).
    The kernels accumulate in float32 with weights dequantized in float32 (one row) or rounded to
    the model dtype (rows, as dequantize() does): allow 4 units of |w| . |x| and of the output."""
    if prologue == gemv.RMSNORM:
        x = rms_norm(x, norm, eps)
    elif prologue == gemv.SILU:
        g, u = x.chunk(2, dim=-1)
        x = F.silu(g) * u
    w = packed.dequantize(p)
    y = F.linear(x.float(), w.float())
    u = UNIT[x.dtype]
    slack = 4 * u * (F.linear(x.float().abs(), w.float().abs()) + y.abs()) + 1e-5
    if residual is not None:
        y = y.to(x.dtype).float() + residual.float()
        slack = slack + 4 * u * y.abs()
    return y, slack


def one_row(x, p, norm=None, residual=None, eps=1e-6, prologue=gemv.NONE):
    return packed.packed_gemv(x, p.codes, p.scale, p.low, norm, residual, eps, prologue, p.bits, p.group)


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("prologue", [gemv.NONE, gemv.RMSNORM, gemv.SILU])
@pytest.mark.parametrize("dtype, k", [(torch.float32, 256), (torch.float16, 256), (torch.float32, 2048)])
def test_one_row_matches_the_dequantized_layers(bits, prologue, dtype, k):
    """k 2048: int4 has 8 groups in each nibble half and the loop takes two steps, so a wrong
    group index or step offset shows."""
    torch.manual_seed(prologue * 10 + bits)
    n = 37  # the last program's rows are masked
    p = packed.pack(torch.randn(n, k, dtype=dtype) / 8, bits)
    x = torch.randn(1, 1, 2 * k if prologue == gemv.SILU else k, dtype=dtype)
    norm = torch.rand(k, dtype=dtype) + 0.5
    residual = torch.randn(1, 1, n, dtype=dtype)
    got = one_row(x, p, norm, residual, 1e-6, prologue)
    want, slack = reference(x, p, norm, residual, 1e-6, prologue)
    assert got.shape == (1, 1, n) and ((got.float() - want).abs() <= slack).all()


@pytest.mark.parametrize("prologue", [gemv.NONE, gemv.SILU])
@pytest.mark.parametrize("k, block_w", [(256, 16), (2048, 32)])
def test_int8_column_splits_match_the_dequantized_layers(monkeypatch, prologue, k, block_w):
    """int8's one-row kernel with its columns split 4 ways (the last of a row block's programs
    adding the partials, fast.gemv_kernel.finish_rows): the same products, and counts left at 0."""
    import triton

    from infercomp.fast import gemv_kernel, packed_kernel

    split = triton.Config({"BLOCK_N": 4, "BLOCK_W": block_w, "SPLIT": 4}, num_warps=4)
    monkeypatch.setattr(packed_kernel.int8_gemv_kernel, "configs", [split])
    torch.manual_seed(k + prologue)
    n = 37
    p = packed.pack(torch.randn(n, k) / 8, 8)
    x = torch.randn(1, 1, 2 * k if prologue == gemv.SILU else k)
    residual = torch.randn(1, 1, n)
    got = one_row(x, p, None, residual, 1e-6, prologue)
    want, slack = reference(x, p, None, residual, 1e-6, prologue)
    assert ((got.float() - want).abs() <= slack).all()
    assert not gemv_kernel.counts(x.device).any()


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("rows", [2, 5, 17])
def test_rows_match_the_dequantized_product(bits, dtype, rows):
    torch.manual_seed(rows + bits)
    p = packed.pack(torch.randn(70, 192, dtype=dtype) / 8, bits)  # int4 groups of 32; 70: masked columns
    x = torch.randn(rows, 192, dtype=dtype)
    got = packed.linear(x, p)
    want, slack = reference(x, p, None, None, 0.0, gemv.NONE)
    assert ((got.float() - want).abs() <= slack).all()


def test_float32_rows_are_exact_products_not_tf32():
    """float32 models multiply in IEEE float32 (a TF32 product would keep 10 mantissa bits)."""
    torch.manual_seed(3)
    p = packed.pack(torch.randn(32, 128), 8)
    x = torch.randn(4, 128)
    want = F.linear(x.double(), packed.dequantize(p).double())
    assert torch.allclose(packed.linear(x, p).double(), want, rtol=0, atol=1e-4)


def test_a_swapped_nibble_order_is_caught(monkeypatch):
    """A planted wrong layout (high and low nibbles swapped in the reference) fails the check
    the kernels pass: the test can tell the two halves of a byte apart."""
    torch.manual_seed(4)
    p = packed.pack(torch.randn(16, 128), 4)
    x = torch.randn(1, 1, 128)
    right, slack = reference(x, p, None, None, 0.0, gemv.NONE)
    swapped = packed.PackedWeight((p.codes >> 4) | (p.codes << 4), p.scale, p.low, 4, p.group, 128, p.dtype)
    wrong, _ = reference(x, swapped, None, None, 0.0, gemv.NONE)
    got = one_row(x, p).float()
    assert ((got - right).abs() <= slack).all()
    assert not ((got - wrong).abs() <= slack).all()


def wide_model(seed: int, temperature: float):
    """The tiny test model with layers wide enough for int4 groups (hidden 64, MLP 128)."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    import test_fast_engine

    cfg = Qwen3Config(
        vocab_size=test_fast_engine.VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=64,
        tie_word_embeddings=False,
    )  # fmt: skip
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(cfg).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(10.0 * temperature)
    model.generation_config.eos_token_id = None
    return model


@pytest.mark.parametrize("bits", [8, 4])
def test_the_engine_keeps_its_tokens_with_the_kernels(bits, monkeypatch):
    """A small Qwen3 in float32 on the fast engine with packed weights: greedy tokens with the
    kernels (one-row decode steps with their prologues, the prompt's rows through `mm`) equal
    those of the dequantizing path, and both kernels ran."""
    import test_fast_engine
    from infercomp.quant_apply import quantize_lean

    monkeypatch.setattr(test_fast_engine, "tiny_model", wide_model)
    fast = test_fast_engine.tiny_engine(1)
    quantize_lean(fast.lean, f"int{bits}-infercomp")
    monkeypatch.setenv("INFERCOMP_PACKED_KERNELS", "0")
    plain = [r.token_ids for r in fast.generate([0], do_sample=False).rows]
    monkeypatch.setenv("INFERCOMP_PACKED_KERNELS", "1")
    monkeypatch.setattr(gemv, "READY", True)  # the one-row fused path, as a compiled CUDA engine runs it
    kernels = packed.kernels()
    calls = {"gemv": 0, "mm": 0}

    def counted(name):
        real = getattr(kernels, name)

        def run(*a):
            calls[name] += 1
            return real(*a)

        return run

    monkeypatch.setattr(kernels, "gemv", counted("gemv"))
    monkeypatch.setattr(kernels, "mm", counted("mm"))
    fused = [r.token_ids for r in fast.generate([0], do_sample=False).rows]
    assert fused == plain and len(plain[0]) >= 5
    assert calls["gemv"] == 2 * 4 * (len(plain[0]) - 1) and calls["mm"] >= 2 * 4
