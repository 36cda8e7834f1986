"""The fast engine's quantized KV cache (int8 / fp8 codes with a float32 scale per token and KV
head): its rounding error, its measured bytes against the tensors and the formula, greedy output
against the model-dtype cache, beam search and speculative decoding over it, long prefills in row
groups, and maxbatch recovering after running out of memory."""

from __future__ import annotations

import pytest
import torch

from infercomp.config import load_config
from infercomp.fast import kvcache, runtime
from infercomp.fast.kvcache import KVCache, bytes_per_token, codes_as, quantize
from infercomp.fast.model import Shape
from infercomp.loader import load_engine

PROMPTS = [
    "generate short bed time story containing word elephant and cake",
    "Once upon a time",
    "Write a short bedtime story with the words turtle and kite.",
]
NEW = 100
# Greedy tokens that must agree with the model-dtype cache, position by position. The codes round
# each key and value by at most half a step of max|x| / 127 (int8) or 2^-4 relative (fp8 e4m3),
# which moves the logits far less than the gap between the two best tokens at almost every step;
# where the gap is smaller the row takes another token and its later tokens differ. On the embedded
# pair both kinds agreed on every token of 3 x 100 (float32); a scale applied to the wrong slot or
# head, or not at all, leaves the text near 0 % agreement.
AGREEMENT = 0.9


def shape(layers=2, kv_heads=2, head_dim=8) -> Shape:
    return Shape(layers, 4, kv_heads, head_dim, 16, 10, 1e-6, 64)


@pytest.mark.parametrize("kind", ["int8", "fp8"])
def test_codes_round_within_their_step(kind):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 2, 64, generator=gen) * torch.logspace(-3, 2, 5)[None, :, None, None]
    codes, scale = quantize(x, kind)
    assert codes.dtype == kvcache.STORAGE[kind] and scale.shape == x.shape[:-1] and scale.dtype == torch.float32
    back = codes_as(codes, torch.float32) * scale[..., None]
    amax = x.abs().amax(-1, keepdim=True)
    if kind == "int8":
        bound = amax / 127 / 2 * (1 + 1e-5)  # half a step
    else:  # 3 mantissa bits: 2^-4 relative; e4m3's subnormals are 2^-9 codes apart
        bound = x.abs() * 2**-4 + amax / 448 * 2**-10
    assert ((back - x).abs() <= bound + 1e-12).all()
    assert back.abs().amax(-1).sub(amax[..., 0]).abs().max() < 1e-5 * amax.max()  # the largest value is exact


def test_zero_vectors_stay_zero():
    codes, scale = quantize(torch.zeros(2, 8), "int8")
    assert (codes == 0).all() and torch.isfinite(scale).all()


@pytest.mark.parametrize("kind", [None, "int8", "fp8"])
def test_measured_bytes_are_the_tensors_and_match_the_formula(kind):
    s, rows, slots = shape(layers=3, kv_heads=2, head_dim=128), 5, 64
    cache = KVCache(s, rows, slots, torch.bfloat16, "cpu", kind)
    by_tensor = sum(
        t.numel() * t.element_size() for t in cache.k + cache.v + cache.k_scale + cache.v_scale if t is not None
    )
    assert cache.nbytes() == by_tensor == rows * slots * bytes_per_token(s, torch.bfloat16, kind)
    bf16 = rows * slots * bytes_per_token(s, torch.bfloat16, None)
    if kind is not None:
        # 128 one-byte codes + a 4-byte scale per token and head, against 128 x 2 bytes: 132 / 256
        assert cache.nbytes() / bf16 == pytest.approx(132 / 256)
        assert len([t for t in cache.k_scale + cache.v_scale if t is not None]) == 2 * 3


def test_reorder_moves_codes_and_scales_together():
    cache = KVCache(shape(), 4, 16, torch.float32, "cpu", "int8")
    for t in cache.tensors():
        t.copy_(torch.arange(4).view(4, *[1] * (t.dim() - 1)).expand_as(t))  # row r holds r
    parents = torch.tensor([2, 2, 0])
    cache.reorder(parents)
    for t in cache.tensors():
        assert [int(t[r].flatten()[0]) for r in range(4)] == [2, 2, 0, 3]


@pytest.mark.parametrize("kind", [None, "int8"])
@pytest.mark.parametrize("chunk_layers", [1, 2, 3])  # REORDER_BYTES worth 1, 2 or 3 layers' rows
def test_reorder_in_layer_chunks_follows_every_parent(kind, chunk_layers, monkeypatch):
    """The reorder gathers a chunk of layers at a time: every layer (3 of them, so a chunk of 2
    leaves a partial one), every row, its own values, the rows past the beams untouched, and one
    gather per chunk of each stack (keys, values, and their scales for codes)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Gathers(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Gathers.count += func is torch.ops.aten.index_select.default
            return func(*args, **(kwargs or {}))

    cache = KVCache(shape(layers=3), 5, 8, torch.float32, "cpu", kind)
    for t in cache.tensors():
        t.copy_(torch.randn(t.shape))
    before = [t.clone() for t in cache.tensors()]
    parents = torch.tensor([3, 0, 0, 1])  # a cycle (0 <- 3 <- 1 <- 0) and a duplicate
    b = parents.shape[0]
    # the stacks' rows per layer differ in bytes (int8 codes, float32 scales): the codes' set the chunk
    codes = cache.stacks[0]
    monkeypatch.setattr(kvcache, "REORDER_BYTES", chunk_layers * codes[0, :b].numel() * codes.element_size())
    with Gathers():
        cache.reorder(parents)
    for t, old in zip(cache.tensors(), before, strict=True):
        assert torch.equal(t[:b], old[parents]) and torch.equal(t[b:], old[b:])
    # keys and values in chunks of 1, 2 or 3 layers: 3, 2 or 1 gathers each; an int8 cache's
    # float32 scales take half the codes' bytes a layer (8 slots x 4 B against 8 x 8 x 1 B per row
    # and head): chunks of 2, 4 or 6 layers, 2, 1 or 1 gathers each
    gathers = {None: {1: 6, 2: 4, 3: 2}, "int8": {1: 6 + 4, 2: 4 + 2, 3: 2 + 2}}
    assert Gathers.count == gathers[kind][chunk_layers]
    assert all(t.data_ptr() == s.data_ptr() for t, s in zip(cache.k, cache.stacks[0], strict=True))


def test_reorder_limit_setting(monkeypatch):
    monkeypatch.delenv("INFERCOMP_FAST_REORDER_MB", raising=False)
    assert kvcache._reorder_bytes() == 64 << 20
    monkeypatch.setenv("INFERCOMP_FAST_REORDER_MB", "0")  # one layer at a time
    assert kvcache._reorder_bytes() == 0
    monkeypatch.setenv("INFERCOMP_FAST_REORDER_MB", "-1")
    with pytest.raises(ValueError, match="INFERCOMP_FAST_REORDER_MB='-1': expected a whole number"):
        kvcache._reorder_bytes()


def test_reorder_gathers_a_layer_at_least():
    """A limit below one layer's rows still moves every layer (one at a time)."""
    cache = KVCache(shape(layers=3), 3, 8, torch.float32, "cpu")
    for t in cache.tensors():
        t.copy_(torch.randn(t.shape))
    before = [t.clone() for t in cache.tensors()]
    old_limit, kvcache.REORDER_BYTES = kvcache.REORDER_BYTES, 0  # INFERCOMP_FAST_REORDER_MB=0
    try:
        cache.reorder(torch.tensor([1, 0]))
    finally:
        kvcache.REORDER_BYTES = old_limit
    for t, old in zip(cache.tensors(), before, strict=True):
        assert torch.equal(t[:2], old[[1, 0]])


def test_unknown_kind_is_one_clear_error():
    with pytest.raises(ValueError, match="KV cache kind 'int4'"):
        KVCache(shape(), 1, 16, torch.float32, "cpu", "int4")


def test_kv_cache_dtype_is_validated():
    from infercomp.config import ConfigError

    with pytest.raises(ConfigError, match="kv_cache_dtype"):
        load_config("example", overrides={"kv_cache_dtype": "int4"})


# ---------------------------------------------------------------------------------------------
# The embedded pair on the fast engine (float32 on CPU).


def fast_engine(**overrides):
    base = dict(prompts=PROMPTS, num_completions=4, batch_size=4, max_new_tokens=NEW, temperature=0.0)
    cfg = load_config("example", embedded=True, overrides={**base, "dtype": "float32", **overrides})
    engine = load_engine(cfg, need_assistant=True)
    assert type(engine).__name__ == "FastEngine", engine.settings.notes
    return engine


@pytest.fixture(scope="module")
def plain():
    return fast_engine()


def agreement(want_rows, got_rows) -> float:
    """Share of the tokens that match at the same position, over both rows' lengths."""
    same = total = 0
    for a, b in zip(want_rows, got_rows, strict=True):
        same += sum(x == y for x, y in zip(a.token_ids, b.token_ids, strict=False))
        total += max(len(a.token_ids), len(b.token_ids))
    return same / total


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["int8", "fp8"])
def test_greedy_agrees_with_the_model_dtype_cache(plain, kind):
    quant = fast_engine(cache_implementation="quantized", kv_cache_dtype=kind)
    assert quant.kv_kind == kind and quant.settings.cache_implementation == "quantized"
    assert any(f"{kind} keys and values" in n for n in quant.settings.notes)
    index = [0, 1, 2, 0]
    want, got = plain.generate(index, do_sample=False), quant.generate(index, do_sample=False)
    rate = agreement(want.rows, got.rows)
    assert rate >= AGREEMENT, f"{kind}: {rate:.3f} of greedy tokens agree"
    # Measured bytes: the cache's tensors. float32 model: (hd codes + 4) / (4 hd) of the plain cache.
    hd = plain.lean.shape.head_dim
    assert got.kv_cache_bytes == quant.cache.nbytes()
    assert quant.cache.nbytes() * 4 * hd == plain.cache.nbytes() * (hd + 4)
    assert quant.kv_cache_bytes() == quant.cache.nbytes() + quant.draft_cache.nbytes()


@pytest.mark.slow
def test_beam_search_runs_over_the_int8_cache(plain):
    quant = fast_engine(cache_implementation="quantized")
    want = plain.generate([0], do_sample=False, num_beams=4, num_return_sequences=4)
    got = quant.generate([0], do_sample=False, num_beams=4, num_return_sequences=4)
    assert len(got.rows) == 4
    # The best beam's tokens and score: reordering the cache must carry each row's scales along,
    # or the beams read each other's keys at the wrong scale and the text falls apart.
    assert agreement(want.rows[:1], got.rows[:1]) >= AGREEMENT
    assert got.rows[0].score == pytest.approx(want.rows[0].score, abs=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("source", ["assistant", "prompt_lookup"])
def test_speculative_over_the_int8_cache_is_its_own_greedy(source):
    from infercomp.methods import get_method

    quant = fast_engine(cache_implementation="quantized", draft_source=source)
    assert get_method("batched_speculative").skip_reason(quant) is None
    index = [2, 0, 1, 2]  # ragged: rejected drafts are rolled back by moving each row's length
    want = quant.generate(index, do_sample=False)
    got = quant.draft_and_verify(index, do_sample=False)
    # Verify writes up to k+1 keys per round and keeps some; a kept key is quantized from the same
    # vector as in plain decoding (up to float rounding between the two passes' shapes).
    rate = agreement(want.rows, got.rows)
    assert rate >= AGREEMENT, f"{source}: {rate:.3f}"
    st = got.speculative
    assert st.rounds > 0 and 0 <= st.accepted <= st.drafted
    if source == "assistant":
        assert st.accepted / st.drafted > 0.6
        assert got.kv_cache_bytes == quant.cache.nbytes() + quant.draft_cache.nbytes()


@pytest.mark.slow
def test_long_prefill_in_row_groups_matches_the_one_block_prefill(plain, monkeypatch):
    """Prompts of 16 tokens and more run the long-prompt path (one row per group, attention over the
    block's own keys); float32 results equal the masked one-block path's token for token."""
    index = [0, 1, 2]
    want = plain.generate(index, do_sample=False)
    monkeypatch.setattr(runtime, "LONG_PREFILL", 16)
    monkeypatch.setattr(runtime, "PREFILL_TOKENS", 16)
    calls = []
    real = runtime._layers
    monkeypatch.setattr(runtime, "_layers", lambda *a: calls.append(a[3].shape) or real(*a))
    plain._steps.clear()  # the captured bodies hold the old path
    got = plain.generate(index, do_sample=False)
    plain._steps.clear()
    assert [tuple(s) for s in calls[:3]] == [(1, 16)] * 3  # the prefill: three groups of one row
    assert [r.token_ids for r in got.rows] == [r.token_ids for r in want.rows]


@pytest.mark.slow
def test_maxbatch_recovers_after_running_out_of_memory(monkeypatch):
    """A cache that cannot be allocated is out of memory; the search then tries smaller sizes on
    the same engine, which must allocate again (not keep the size that failed)."""
    from infercomp.fast import engine as fast_engine_module
    from infercomp.maxbatch import find_max_batch

    def limited(shape, rows, *args):
        if rows > 5:
            raise torch.OutOfMemoryError("test: more than 5 rows")
        return kvcache.make_cache(shape, rows, *args)

    monkeypatch.setattr(fast_engine_module, "make_cache", limited)
    cfg = load_config(
        "example",
        embedded=True,
        overrides=dict(prompts=PROMPTS[:1], max_new_tokens=3, dtype="float32", cache_implementation="quantized"),
    )
    found = find_max_batch(cfg, "batched", 16)
    assert found["max_batch_size"] == 5
    assert (found["engine"], found["cache_implementation"], found["kv_cache_dtype"]) == ("fast", "quantized", "int8")
    assert (8, False) in found["trials"] and (5, True) in found["trials"]


@pytest.mark.parametrize("kind", [None, "int8", "fp8"])
@pytest.mark.parametrize("prefill", [False, True])
def test_the_layer_traces_as_one_graph_for_every_kind(kind, prefill):
    """On CUDA the layer function is compiled whole (fullgraph) and captured: a host sync or a
    data-dependent shape in the cache's write or read would break the graph and fail here."""
    from infercomp.fast.model import LayerWeights, attention_mask, layer_forward, rms_norm

    torch.manual_seed(0)
    s, hd, hidden = Shape(1, 4, 2, 16, 32, 10, 1e-6, 128), 16, 32
    w = LayerWeights(
        qkv=torch.randn(8 * hd, hidden) * 0.1,
        qkv_bias=None,
        o=torch.randn(hidden, 4 * hd) * 0.1,
        gate_up=torch.randn(128, hidden) * 0.1,
        down=torch.randn(hidden, 64) * 0.1,
        norm_in=torch.ones(hidden),
        norm_post=torch.ones(hidden),
        q_norm=torch.ones(hd),
        k_norm=torch.ones(hd),
    )
    b, q = 3, 8 if prefill else 1
    x = torch.randn(b, q, hidden)
    pos = torch.arange(q)[None].expand(b, q) + (0 if prefill else 5)
    rows = torch.arange(b)[:, None].expand(b, q)
    cos, sin = torch.ones(b, q, 1, hd), torch.zeros(b, q, 1, hd)
    mask = None if prefill else attention_mask(pos, 64, s.groups)
    caches = [KVCache(s, b, 64, torch.float32, "cpu", kind) for _ in range(2)]
    torch._dynamo.reset()
    compiled = torch.compile(layer_forward, fullgraph=True, dynamic=False, backend="aot_eager")
    with torch.inference_mode():
        want = layer_forward(x, w, caches[0].layer(0), rows, caches[0].heads, pos, cos, sin, mask, s)
        got = compiled(x, w, caches[1].layer(0), rows, caches[1].heads, pos, cos, sin, mask, s)
    assert torch.equal(got, want)
    assert all(torch.equal(a, c) for a, c in zip(caches[0].tensors(), caches[1].tensors(), strict=True))
    written = caches[1].k[0][:, :, pos[0]]  # the new keys' slots hold codes, the others zeros
    assert written.abs().sum() > 0 and caches[1].k[0].abs().sum() == written.abs().sum()
    # the chained form (the input's norm given, the next norm returned) traces as one graph too
    normed, after = rms_norm(x, w.norm_in, s.eps), torch.linspace(0.5, 1.5, hidden)
    with torch.inference_mode():
        x_want, n_want = layer_forward(
            x, w, caches[0].layer(0), rows, caches[0].heads, pos, cos, sin, mask, s, normed, after
        )
        x_got, n_got = compiled(x, w, caches[1].layer(0), rows, caches[1].heads, pos, cos, sin, mask, s, normed, after)
    assert torch.equal(x_got, x_want) and torch.equal(n_got, n_want)
    assert torch.equal(n_want, rms_norm(x_want, after, s.eps))


def test_quantized_cache_needs_no_package_on_the_fast_engine_only():
    """The fast engine's quantized cache is its own; where the reference engine runs instead, its
    quantized cache needs optimum-quanto (or hqq), and without it the run says so and runs dynamic."""
    from infercomp.models import _has, reference_cache, resolve_settings

    fast = resolve_settings(load_config("example", overrides={"cache_implementation": "quantized", "device": "cpu"}))
    assert fast.cache_implementation == "quantized"
    ref = resolve_settings(
        load_config(
            "example", overrides={"cache_implementation": "quantized", "device": "cpu", "engine": "transformers"}
        )
    )
    reference_cache(fast)  # the fast engine could not run these models: the reference engine's rule applies
    if _has("optimum.quanto") or _has("hqq"):
        assert ref.cache_implementation == fast.cache_implementation == "quantized"
    else:
        assert ref.cache_implementation == fast.cache_implementation == "dynamic"
        assert any("'quantized' skipped" in n for n in fast.notes)


# ---------------------------------------------------------------------------------------------
# The offloaded cache (host memory, streamed through two device buffers): on CPU its bookkeeping
# (staging, write-back of a prefill's rows, beam permutation) with the same arithmetic as the
# plain cache, so float32 results are equal.


def use_cache_kind(engine, kind):
    """Swap an engine's caches for another kind (resolve_settings sends "offloaded" on CPU to
    the plain cache, so the tests build it directly)."""
    engine.kv_kind = kind
    engine._steps.clear()
    engine._states.clear()
    engine.cache = engine._new_cache(engine.lean, engine.cap.rows)
    engine.draft_cache = engine._new_cache(engine.lean_draft, engine.cap.rows)
    return engine


@pytest.fixture(scope="module")
def offloaded():
    return use_cache_kind(fast_engine(), "offloaded")


def test_offloaded_cache_holds_every_layer_on_the_host_and_two_on_the_device():
    from infercomp.fast.offload import OffloadedKVCache

    s, rows, slots = shape(layers=6, kv_heads=2, head_dim=8), 3, 16
    cache = kvcache.make_cache(s, rows, slots, torch.float32, "cpu", "offloaded")
    assert isinstance(cache, OffloadedKVCache)
    per_layer = rows * slots * bytes_per_token(shape(layers=1, kv_heads=2, head_dim=8), torch.float32, None)
    assert cache.device_nbytes() == 2 * per_layer  # two buffers of K and V
    assert cache.nbytes() == 6 * per_layer + 2 * per_layer


@pytest.mark.slow
def test_offloaded_greedy_beams_and_speculative_equal_the_plain_cache(plain, offloaded):
    from infercomp.methods import get_method

    index = [0, 1, 2, 0]
    want = plain.generate(index, do_sample=False)
    got = offloaded.generate(index, do_sample=False)
    offloaded.settings.cache_implementation = "offloaded"
    assert get_method("batched_speculative").skip_reason(offloaded) is None
    assert [r.token_ids for r in got.rows] == [r.token_ids for r in want.rows]
    assert got.kv_cache_bytes == offloaded.cache.nbytes()
    beams_want = plain.generate([2], do_sample=False, num_beams=4, num_return_sequences=4)
    beams_got = offloaded.generate([2], do_sample=False, num_beams=4, num_return_sequences=4)
    assert [r.token_ids for r in beams_got.rows] == [r.token_ids for r in beams_want.rows]
    assert [r.score for r in beams_got.rows] == pytest.approx([r.score for r in beams_want.rows], abs=1e-5)
    for source in ("assistant", "prompt_lookup"):
        offloaded.config = offloaded.config.model_copy(update={"draft_source": source})
        spec = offloaded.draft_and_verify(index, do_sample=False)
        assert [r.token_ids for r in spec.rows] == [r.token_ids for r in want.rows], source


@pytest.mark.slow
def test_offloaded_long_prefill_writes_back_each_group(plain, offloaded, monkeypatch):
    index = [0, 1, 2]
    want = plain.generate(index, do_sample=False)
    monkeypatch.setattr(runtime, "LONG_PREFILL", 16)
    monkeypatch.setattr(runtime, "PREFILL_TOKENS", 16)
    offloaded._steps.clear()
    got = offloaded.generate(index, do_sample=False)
    offloaded._steps.clear()
    assert [r.token_ids for r in got.rows] == [r.token_ids for r in want.rows]
