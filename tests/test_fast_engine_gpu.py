"""The fast engine on a CUDA device (compiled layers, captured steps) against the reference engine:
token for token in float32, and in bf16 the share of identical completions and the mean first
divergence, reported and held to a stated tolerance. Skipped without a GPU."""

from __future__ import annotations

import json
import os

import pytest

from infercomp.config import load_config
from infercomp.fast import build_fast_engine
from infercomp.loader import load_engine

pytestmark = pytest.mark.gpu
# Correctness, not speed: skip the compiler's block-size search, which triples each shape's
# compile time (every shape below compiles once).
os.environ.setdefault("INFERCOMP_FAST_TUNING", "0")

PROMPTS = [
    "generate short bed time story containing word elephant and cake",
    "Once upon a time",
    "Write a short bedtime story with the words turtle and kite.",
]


def pair(dtype: str, **overrides):
    base = dict(prompts=PROMPTS, num_completions=8, batch_size=8, max_new_tokens=96, temperature=0.0, dtype=dtype)
    cfg = load_config("example", embedded=True, overrides={**base, "device": "cuda", **overrides})
    ref = load_engine(cfg, need_assistant=True)
    fast = build_fast_engine(load_engine(cfg, need_assistant=True))
    assert type(fast).__name__ == "FastEngine", fast.settings.notes
    return ref, fast


def first_divergence(a: list[int], b: list[int]) -> int | None:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


@pytest.fixture(scope="module")
def float32_pair():
    return pair("float32")


@pytest.mark.parametrize("batch", [1, 8])
def test_float32_greedy_and_speculative_match_the_reference(float32_pair, batch):
    ref, fast = float32_pair
    index = [i % len(PROMPTS) for i in range(batch)]
    want = [r.token_ids for r in ref.generate(index, do_sample=False).rows]
    assert [r.token_ids for r in fast.generate(index, do_sample=False).rows] == want
    if batch == 8:  # ragged rows, drafts accepted in different numbers
        assert [r.token_ids for r in fast.draft_and_verify(index, do_sample=False).rows] == want


def test_float32_beams_match_transformers(float32_pair):
    ref, fast = float32_pair
    enc = ref.tokenizer([PROMPTS[1]], return_tensors="pt").to("cuda")
    out = ref.main.generate(
        **enc,
        **ref.generation_defaults(),
        num_beams=4,
        num_return_sequences=4,
        do_sample=False,
        output_scores=True,
        return_dict_in_generate=True,
    )
    got = fast.generate([1], do_sample=False, num_beams=4, num_return_sequences=4)
    for j, row in enumerate(got.rows):
        assert row.score == pytest.approx(float(out.sequences_scores[j]), abs=1e-4)


def test_bf16_agreement_is_reported_and_within_tolerance():
    """bf16 rounding differs between the two engines' kernels, so near-ties may flip: the share of
    identical greedy completions and the mean first divergence are measured, not assumed."""
    ref, fast = pair("bfloat16")
    index = [i % len(PROMPTS) for i in range(8)]
    first = fast.generate(index, do_sample=False)
    assert first.compile_s > 0  # the first call of a shape captured its steps before its clock
    assert fast.generate(index, do_sample=False).compile_s == 0.0
    record = fast.record()
    assert record["captured_steps"] >= 2 and record["compile_seconds"] > 0
    assert "cuda graphs" in record["compile_mode"]
    report = {}
    for name, call in (("generate", fast.generate), ("speculative", fast.draft_and_verify)):
        want = [r.token_ids for r in ref.generate(index, do_sample=False).rows]
        got = [r.token_ids for r in call(index, do_sample=False).rows]
        divergences = [first_divergence(a, b) for a, b in zip(want, got, strict=True)]
        same = sum(d is None for d in divergences) / len(divergences)
        firsts = [d for d in divergences if d is not None]
        report[name] = {
            "identical_share": same,
            "mean_first_divergence": sum(firsts) / len(firsts) if firsts else None,
            "rows": len(divergences),
        }
    print("bf16 agreement (fast vs reference, greedy, 96 tokens):", json.dumps(report))
    out = os.environ.get("INFERCOMP_GPU_REPORT")
    if out:
        with open(out, "a") as f:
            f.write(json.dumps({"bf16_agreement": report}) + "\n")
    for name, r in report.items():
        # Tolerance: at least half the completions identical, and divergences (if any) not in the
        # first few tokens, where a wrong kernel would show at once.
        assert r["identical_share"] >= 0.5, (name, r)
        assert r["mean_first_divergence"] is None or r["mean_first_divergence"] >= 8, (name, r)


@pytest.mark.parametrize("split", [2, 4, 8])
def test_column_splits_are_exact_and_repeatable_on_the_gpu(split):
    """The split one-row kernel compiled (its atomic counts and the last arrival's reads of the
    other programs' partials are what the interpreter cannot check): float32, the down
    projection's shape, 200 launches each equal to the unsplit product within float32 summation
    order, and all 200 bitwise the same (a race would show as a launch that differs); the counts
    are zero afterwards."""
    import torch

    from infercomp.fast import gemv, gemv_kernel

    assert gemv.prepare(torch.device("cuda"))
    torch.manual_seed(split)
    n, k = 2560, 9728
    x, w, r = torch.randn(2 * k, device="cuda"), torch.randn(n, k, device="cuda") / 64, torch.randn(n, device="cuda")
    config = {"BLOCK_N": 4, "BLOCK_K": 512, "SPLIT": split}
    unsplit = gemv_kernel.launch(x, w, None, r, 1e-6, gemv.SILU, {**config, "SPLIT": 1})
    outs = torch.stack([gemv_kernel.launch(x, w, None, r, 1e-6, gemv.SILU, config) for _ in range(200)])
    torch.cuda.synchronize()
    assert torch.allclose(outs[0], unsplit, rtol=1e-5, atol=1e-5), (outs[0] - unsplit).abs().max()
    assert (outs == outs[0]).all(), int((outs != outs[0]).any(dim=1).sum())
    assert not gemv_kernel.counts(x.device).any()


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("rows", [1, 5, 64])
def test_bf16_packed_products_match_the_dequantized_weight(bits, rows):
    """The compiled kernels in bf16 (which Triton's CPU interpreter cannot check) against the
    dequantized weight multiplied in float32. The bound (2^-6 of |x| . |w|, plus 2^-7 of the
    output) is loose, about half a typical output: it catches a wrong layout or scale, not a
    rounding difference; the interpreter tests hold the kernels to a few float32/float16 units."""
    import torch

    from infercomp.fast import packed

    torch.manual_seed(rows)
    p = packed.pack(torch.randn(1000, 2560, device="cuda", dtype=torch.bfloat16) / 16, bits)
    x = torch.randn(rows, 2560, device="cuda", dtype=torch.bfloat16)
    want = x.float() @ packed.dequantize(p).float().T
    got = packed.linear(x, p).float()
    slack = 2**-6 * (x.float().abs() @ packed.dequantize(p).float().abs().T) + 2**-7 * want.abs() + 1e-3
    assert ((got - want).abs() <= slack).all(), (got - want).abs().max()


@pytest.mark.parametrize("recipe", ["int8-infercomp", "int4-infercomp"])
def test_float32_packed_weights_match_the_reference_engine(recipe, monkeypatch):
    """infercomp's own int8/int4 formats: the fast engine (fused one-row kernels, the rows
    kernel for prompts and batches) gives the reference engine's tokens (the same packed weights
    through PackedLinear), at batch 1 and 8."""
    monkeypatch.setenv("INFERCOMP_QUANT_RECIPE", recipe)
    ref, fast = pair("float32", quantization=recipe[:4], quality=False)
    assert fast.settings.quantization_recipe == recipe
    for batch in (1, 8):
        index = [i % len(PROMPTS) for i in range(batch)]
        want = [r.token_ids for r in ref.generate(index, do_sample=False).rows]
        assert [r.token_ids for r in fast.generate(index, do_sample=False).rows] == want


@pytest.mark.parametrize("bits", [4, 2])
@pytest.mark.parametrize("sharpness", [0.5, 4.0, 16.0])
def test_top_p_kernels_keep_the_pytorch_search_set(sharpness, bits, monkeypatch):
    """The compiled top-p kernels against the PyTorch search at Qwen3's vocabulary and 32 rows,
    from nearly flat (most tokens kept) to peaked (a few kept), with the many-rows search's
    digits at 2 bits (its default) and 4 (the profiler's top-p-many-bits-4). The two add the
    masses in different orders, so a token whose mass at-or-above sits within float32 rounding of
    top_p may fall on either side (seen once in 9 x 32 rows): only such tokens may differ."""
    import torch

    from infercomp.fast import sampling, top_p_kernel

    monkeypatch.setattr(top_p_kernel, "BITS_MANY", bits)  # 32 rows: the many-rows digits
    torch.manual_seed(int(sharpness))
    probs = (torch.randn(32, 151936, device="cuda") * sharpness).softmax(-1)
    for top_p in (0.5, 0.9, 0.99):
        got = top_p_kernel.top_p_keep(probs, top_p)
        want = sampling.top_p_keep_eager(probs, top_p)
        rows, cols = (got != want).nonzero(as_tuple=True)
        assert len(rows) <= 2, (top_p, len(rows))
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            mass = probs[r].double()[probs[r] >= probs[r, c]].sum().item()  # mass at or above the token
            assert abs(mass - top_p) < 1e-5, (top_p, mass)


def test_top_p_draw_picks_the_masked_argmax_on_the_gpu():
    """The compiled draw pass at Qwen3's vocabulary and 32 rows: argmax of p / E over the kernels'
    own kept set (top_p_keep), token for token, for 4 noise draws at each of 3 top-p values."""
    import torch

    from infercomp.fast import top_p_kernel

    torch.manual_seed(12)
    probs = (torch.randn(32, 151936, device="cuda") * 4).softmax(-1)
    for top_p in (0.5, 0.9, 0.99):
        keep = top_p_kernel.top_p_keep(probs, top_p)
        for _ in range(4):
            noise = torch.empty_like(probs).exponential_()
            want = (probs * keep / noise).argmax(-1)
            assert torch.equal(top_p_kernel.top_p_draw(probs, noise, top_p), want), top_p


@pytest.mark.parametrize("programs", ["few", "many"])
def test_bf16_fused_attention_block_matches_the_unfused_operations(programs, monkeypatch):
    """The fused attention block (norms, rotation, cache write, attention) compiled for the GPU in
    bf16, at Qwen3-4B's head layout, against the unfused operations in bf16 with float64
    attention: the keys within one bf16 rounding, the output within bf16 tolerance. (The Triton
    interpreter's bf16 products are wrong, so tests/test_attend.py checks float32 and float16.)"""
    import torch

    from attention_cases import fresh_case, unfused_block
    from infercomp.fast import attend, attend_kernel

    if programs == "many":  # as if the programs outnumbered the SMs: MANY_PROGRAMS_SLOTS a step
        monkeypatch.setattr(attend_kernel, "_sm_count", lambda device: 1)
    qkv, cos, sin, (qn, kn), k_cache, v_cache, pos = fresh_case(torch.bfloat16, 32, 8, 128, 600, True)
    launched = pos.shape[0] * k_cache.shape[1]  # programs: rows x kv heads
    many = programs == "many"
    assert attend_kernel.slots_per_step(qkv.cuda(), 128, launched) == (32 if many else 128)
    assert attend_kernel._meta(qkv.cuda(), 4, 128, False, launched)["num_warps"] == (2 if many else 4)
    want, k_want, v_want = unfused_block(qkv, cos, sin, qn, kn, 1e-6, k_cache, v_cache, pos, 32)  # on CPU
    qkv, cos, sin, qn, kn, k_cache, v_cache, pos = (t.cuda() for t in (qkv, cos, sin, qn, kn, k_cache, v_cache, pos))
    got = attend.attend_fresh(qkv, cos, sin, qn, kn, 1e-6, k_cache, v_cache, pos, 32).cpu()
    assert torch.equal(v_cache.cpu(), v_want)
    assert torch.allclose(k_cache.cpu().float(), k_want.float(), rtol=2**-7, atol=2**-7)
    assert torch.allclose(got.double(), want, rtol=2e-2, atol=2e-2), (got.double() - want).abs().max()


@pytest.mark.parametrize("dtype, tol", [("float32", 1e-4), ("bfloat16", 2e-2)])
def test_block_attention_matches_float64(dtype, tol, monkeypatch):
    """The attention kernel over verify blocks (fast.attend.BLOCKS: k + 1 = 5 queries a row, each
    over its row's slots up to its own position) compiled for the GPU at Qwen3-4B's head layout,
    against float64 attention; and a block whose queries all see the last slot fails the check."""
    import torch

    from attention_cases import block_case, block_reference
    from infercomp.fast import attend

    monkeypatch.setattr(attend, "BLOCKS", True)
    xq, k_cache, v_cache, pos = block_case(getattr(torch, dtype), 32, 8, 128, 5, slots=600)
    want = block_reference(xq, k_cache, v_cache, pos)
    xq, k_cache, v_cache, pos = (t.cuda() for t in (xq, k_cache, v_cache, pos))
    assert attend.serves(xq, k_cache, v_cache, None)
    got = attend.attend(xq, k_cache, v_cache, pos).cpu()
    assert torch.allclose(got.double(), want, rtol=tol, atol=tol), (got.double() - want).abs().max()
    late = attend.attend(xq, k_cache, v_cache, pos[:, -1:].expand_as(pos).contiguous()).cpu()
    assert not torch.allclose(late.double(), want, rtol=tol, atol=tol)


@pytest.mark.parametrize("rows", [2, 5, 32, 64])
def test_few_row_kernels_match_cublas_at_qwen3_4b_shapes(rows):
    """fast/rows_kernel.py in bf16 on the GPU, autotuned as the engine launches it: each product
    (q|k|v, o in 4 parts, gate|up, down in 4 parts) within one bf16 rounding of cuBLAS's (both sum
    in float32), and gate|up's fused activation (off by default) within one rounding of the
    unfused formula on cuBLAS's product."""
    import torch
    import torch.nn.functional as F

    from infercomp.fast import rows_kernel

    torch.manual_seed(rows)
    for (n, k), split in [((6144, 2560), 1), ((2560, 4096), 4), ((19456, 2560), 1), ((2560, 9728), 4)]:
        x = torch.randn(rows, k, device="cuda", dtype=torch.bfloat16)
        w = (torch.randn(n, k, device="cuda") * 0.02).to(torch.bfloat16)
        got = rows_kernel.launch(x, w, {"SPLIT": split})
        got = got if split == 1 else got.sum(0).to(torch.bfloat16)
        want = F.linear(x, w)
        assert (got.float() - want.float()).abs().max().item() <= 2**-7 * want.abs().max().item(), (n, k)
    x = torch.randn(rows, 2560, device="cuda", dtype=torch.bfloat16)
    w = (torch.randn(19456, 2560, device="cuda") * 0.02).to(torch.bfloat16)
    gate, up = F.linear(x, w).chunk(2, dim=-1)
    want = F.silu(gate) * up
    got = rows_kernel.gated_launch(x, w)
    assert (got.float() - want.float()).abs().max().item() <= 2**-7 * want.abs().max().item()
