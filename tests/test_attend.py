"""Decode attention in one kernel (fast/attend.py) against masked softmax attention computed in
float64, through Triton's CPU interpreter; then the fast engine with and without it. Skipped where
Triton is not installed (as tests/test_fast_gemv.py); on a GPU, tests/test_fast_engine_gpu.py
checks the engine's float32 tokens with the kernel compiled."""

from __future__ import annotations

import pytest
import torch

from triton_interpreter import interpret_or_skip

interpret_or_skip()

from attention_cases import block_case, block_reference, case, fresh_case, reference, unfused_block  # noqa: E402
from infercomp.fast import attend  # noqa: E402


@pytest.fixture(autouse=True)
def on_cpu(monkeypatch):
    """CPU tensors through the kernel in the interpreter (off by default, so other test modules
    in the same process keep the unfused path)."""
    monkeypatch.setattr(attend, "ON_CPU", True)


@pytest.mark.parametrize(
    "dtype, heads, kv_heads, hd, slots, tol",
    [
        (torch.float32, 8, 2, 64, 150, 1e-5),  # groups of 4; rows of 1, 150 and 71 slots (3 steps of 64)
        (torch.float32, 4, 4, 16, 30, 1e-5),  # no grouping, the smallest head; less than one step
        (torch.float16, 6, 2, 32, 600, 3e-3),  # groups of 3 (not a power of two)
    ],
)
def test_attention_of_one_query_matches_float64(dtype, heads, kv_heads, hd, slots, tol):
    xq, k_cache, v_cache, pos = case(dtype, heads, kv_heads, hd, slots)
    assert attend.serves(xq, k_cache, v_cache, None)
    got = attend.attend(xq, k_cache, v_cache, pos)
    want = reference(xq, k_cache, v_cache, pos)
    assert got.shape == want.shape and got.dtype == dtype
    assert torch.allclose(got.double(), want, atol=tol, rtol=tol), (got.double() - want).abs().max()


def test_a_kernel_that_misses_the_newest_slot_is_caught():
    """The comparison can fail: attending to slots 0..pos-1 (the newest key left out) differs."""
    xq, k_cache, v_cache, pos = case(torch.float32, 8, 2, 64)
    rows = pos[1:]  # rows 1 and 2 (row 0 has only the newest slot)
    got = attend.attend(xq[1:], k_cache[1:], v_cache[1:], rows - 1)
    want = reference(xq[1:], k_cache[1:], v_cache[1:], rows)
    assert not torch.allclose(got.double(), want, atol=1e-3, rtol=1e-3)


def test_what_it_does_not_serve(monkeypatch):
    # off (INFERCOMP_FAST_BLOCK_ATTENTION=0): a verify block below keeps the unfused path
    monkeypatch.setattr(attend, "BLOCKS", False)
    xq, k_cache, v_cache, _ = case(torch.float32, 4, 2, 16)
    assert attend.serves(xq, k_cache, v_cache, None)
    assert not attend.serves(torch.zeros(3, 2, 4, 16), k_cache, v_cache, None)  # two queries per row: a verify block
    assert not attend.serves(xq, k_cache.to(torch.int8), v_cache, torch.ones(3))  # a one-byte cache with scales
    assert not attend.serves(torch.zeros(3, 1, 4, 8), k_cache[..., :8], v_cache[..., :8], None)  # head size 8
    odd = torch.zeros(4, 2, 150, 24)
    assert not attend.serves(torch.zeros(3, 1, 4, 24), odd, odd, None)  # 24: not a power of two
    long = torch.zeros(4, 2, attend.MAX_SLOTS + 1, 16)
    assert not attend.serves(xq, long, long, None)  # a long cache
    assert not attend.serves(xq, k_cache, v_cache.transpose(1, 2).contiguous().transpose(1, 2), None)  # strides differ
    assert not attend.serves(xq.double(), k_cache.double(), v_cache.double(), None)  # float64
    monkeypatch.setattr(attend, "ON_CPU", False)
    assert not attend.serves(xq, k_cache, v_cache, None)  # CPU tensors, the interpreter not asked for


@pytest.mark.parametrize(
    "dtype, heads, kv_heads, hd, slots, norm, tol",
    [
        (torch.float32, 8, 2, 64, 150, True, 1e-5),  # Qwen3: head norms; groups of 4
        (torch.float32, 4, 4, 16, 30, False, 1e-5),  # Llama: no head norms, no grouping
        (torch.float16, 6, 2, 32, 600, True, 3e-3),  # groups of 3
    ],
)
def test_the_fused_block_matches_the_unfused_norms_rotation_write_and_attention(
    dtype, heads, kv_heads, hd, slots, norm, tol
):
    qkv, cos, sin, (qn, kn), k_cache, v_cache, pos = fresh_case(dtype, heads, kv_heads, hd, slots, norm)
    want, k_want, v_want = unfused_block(qkv, cos, sin, qn, kn, 1e-6, k_cache, v_cache, pos, heads)
    got = attend.attend_fresh(qkv, cos, sin, qn, kn, 1e-6, k_cache, v_cache, pos, heads)
    assert got.shape == want.shape and got.dtype == dtype
    assert torch.allclose(got.double(), want, atol=tol, rtol=tol), (got.double() - want).abs().max()
    # the new keys and values are written, nothing else; the keys rounded where the unfused
    # operations round (bit for bit in the interpreter)
    assert torch.equal(k_cache, k_want)
    assert torch.equal(v_cache, v_want)


def test_a_fused_block_without_the_head_norms_is_caught():
    """The comparison can fail: the same block with Qwen3's head norms left out differs."""
    qkv, cos, sin, (qn, kn), k_cache, v_cache, pos = fresh_case(torch.float32, 8, 2, 64, 150, True)
    got = attend.attend_fresh(qkv, cos, sin, qn, kn, 1e-6, k_cache, v_cache, pos, 8)
    want, _, _ = unfused_block(qkv, cos, sin, qn, kn, 1e-6, k_cache, v_cache, pos, 8, skip_norm=True)
    assert not torch.allclose(got.double(), want, atol=1e-3, rtol=1e-3)


def test_the_engine_attends_through_the_kernel_and_keeps_its_tokens(monkeypatch):
    """The embedded pair in float32 on the fast engine (uncompiled on CPU): with the kernels
    serving each decode step's attention (the fused block, and the attention kernel alone),
    greedy tokens equal those of the unfused path, and each kernel did run once per layer and step."""
    from infercomp.config import load_config
    from infercomp.fast import build_fast_engine
    from infercomp.loader import load_engine

    over = dict(prompts=["Once upon a time"], num_completions=2, batch_size=2, max_new_tokens=6, temperature=0.0)
    cfg = load_config("example", embedded=True, overrides={**over, "dtype": "float32", "device": "cpu"})
    fast = build_fast_engine(load_engine(cfg, need_assistant=False))
    monkeypatch.setenv("INFERCOMP_FAST_ATTENTION", "matmul")
    plain = [r.token_ids for r in fast.generate([0, 0], do_sample=False).rows]
    calls, fresh_calls = [], []
    launch, launch_fresh = attend._launcher("launch"), attend._launcher("launch_fresh")

    def counting(seen, real):
        return lambda *a: seen.append(a[0].shape) or real(*a)

    monkeypatch.setitem(attend._LAUNCHERS, "launch", counting(calls, launch))
    monkeypatch.setitem(attend._LAUNCHERS, "launch_fresh", counting(fresh_calls, launch_fresh))
    monkeypatch.setenv("INFERCOMP_FAST_ATTENTION", "kernel")
    monkeypatch.setattr(attend, "BLOCKS", True)
    fused = [r.token_ids for r in fast.generate([0, 0], do_sample=False).rows]
    monkeypatch.setenv("INFERCOMP_FAST_FUSED_ROPE", "0")  # norms, rotation and the cache write outside
    attention_only = [r.token_ids for r in fast.generate([0, 0], do_sample=False).rows]
    assert fused == plain == attention_only and len(plain[0]) == 6
    # the embedded main's 6 layers x 5 decode steps, once per path; and with fast.attend.BLOCKS
    # (pinned on above, its default) each call's prefill of the prompt's 16-token bucket, 6 layers
    queries = [shape[1] for shape in calls]  # query positions a row, per launch
    assert len(fresh_calls) == 6 * 5 and queries.count(1) == 6 * 5 and queries.count(16) == 2 * 6
    assert len(queries) == 6 * 5 + 2 * 6


@pytest.mark.parametrize(
    "dtype, heads, kv_heads, hd, queries, tol",
    [
        (torch.float32, 8, 2, 64, 5, 1e-5),  # a verify block of k + 1 = 5, groups of 4: 20 of 32 tile rows
        (torch.float32, 4, 4, 16, 2, 1e-5),  # a draft's first step of two tokens, no grouping
        (torch.float16, 6, 2, 32, 3, 3e-3),  # groups of 3
    ],
)
def test_a_block_of_queries_matches_float64(dtype, heads, kv_heads, hd, queries, tol, monkeypatch):
    xq, k_cache, v_cache, pos = block_case(dtype, heads, kv_heads, hd, queries)
    monkeypatch.setattr(attend, "BLOCKS", False)
    assert not attend.serves(xq, k_cache, v_cache, None)
    monkeypatch.setattr(attend, "BLOCKS", True)
    assert attend.serves(xq, k_cache, v_cache, None)
    got = attend.attend(xq, k_cache, v_cache, pos)
    want = block_reference(xq, k_cache, v_cache, pos)
    assert got.shape == want.shape and got.dtype == dtype
    assert torch.allclose(got.double(), want, atol=tol, rtol=tol), (got.double() - want).abs().max()
    # the comparison can fail: every query of a row seeing the block's last slot differs
    late = attend.attend(xq, k_cache, v_cache, pos[:, -1:].expand_as(pos).contiguous())
    assert not torch.allclose(late.double(), want, atol=1e-3, rtol=1e-3)


def test_blocks_past_one_tile_keep_the_unfused_path(monkeypatch):
    monkeypatch.setattr(attend, "BLOCKS", True)
    _, k_cache, v_cache, _ = case(torch.float32, 8, 2, 16)
    rows = attend.MAX_BLOCK_ROWS // 4  # queries of 4 heads each that fill one tile
    assert attend.serves(torch.zeros(3, rows, 8, 16), k_cache, v_cache, None)
    assert not attend.serves(torch.zeros(3, rows + 1, 8, 16), k_cache, v_cache, None)


def test_the_engine_verifies_through_the_block_kernel_and_keeps_its_tokens(monkeypatch):
    """The embedded pair in float32 on the fast engine (CPU, uncompiled): draft-and-verify with
    the block kernel serving the verify passes (and the draft's two-token first steps) gives the
    greedy tokens of plain decoding on the unfused path, and the block kernel ran."""
    from infercomp.config import load_config
    from infercomp.fast import build_fast_engine
    from infercomp.loader import load_engine

    over = dict(prompts=["Once upon a time"], num_completions=2, batch_size=2, max_new_tokens=8, temperature=0.0)
    cfg = load_config("example", embedded=True, overrides={**over, "dtype": "float32", "device": "cpu"})
    fast = build_fast_engine(load_engine(cfg, need_assistant=True))
    monkeypatch.setenv("INFERCOMP_FAST_ATTENTION", "matmul")
    plain = [r.token_ids for r in fast.generate([0, 0], do_sample=False).rows]
    monkeypatch.setenv("INFERCOMP_FAST_ATTENTION", "kernel")
    monkeypatch.setattr(attend, "BLOCKS", True)
    blocks, launch = [], attend._launcher("launch")
    monkeypatch.setitem(attend._LAUNCHERS, "launch", lambda *a: blocks.append(a[0].shape[1]) or launch(*a))
    spec = [r.token_ids for r in fast.draft_and_verify([0, 0], do_sample=False).rows]
    assert spec == plain and len(plain[0]) == 8
    assert cfg.num_assistant_tokens + 1 in blocks  # the verify passes' blocks went through the kernel
    # a verify block's logits over slots the call above wrote (0..9), each query at its own position
    from infercomp.fast import runtime

    ids, pos = torch.tensor([[5, 6, 7, 8, 9], [9, 8, 7, 6, 5]]), torch.arange(5, 10)[None].expand(2, 5)
    rows = torch.arange(2)[:, None].expand(2, 5)
    logits = {}
    for path in ("kernel", "matmul"):
        monkeypatch.setenv("INFERCOMP_FAST_ATTENTION", path)
        logits[path] = runtime.forward(fast.rt, fast.lean, fast.cache, ids, pos, rows, prefill=False, visible=16)
    assert torch.allclose(logits["kernel"], logits["matmul"], atol=1e-4, rtol=1e-4)
