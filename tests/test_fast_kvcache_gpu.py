"""The fast engine's KV-cache kinds on a CUDA device (compiled layers, captured steps), embedded
pair in float32: the offloaded cache (side-stream copies inside the captured steps) equals the
device cache token for token; the int8 and fp8 caches agree with it on most greedy tokens (the
tolerance of tests/test_fast_kvcache.py, for the same reason). Skipped without a GPU."""

from __future__ import annotations

import os

import pytest

from infercomp.config import load_config
from infercomp.loader import load_engine

pytestmark = pytest.mark.gpu
os.environ.setdefault("INFERCOMP_FAST_TUNING", "0")  # correctness, not speed: no block-size search

PROMPTS = [
    "generate short bed time story containing word elephant and cake",
    "Once upon a time",
    "Write a short bedtime story with the words turtle and kite.",
]
AGREEMENT = 0.9


def engine(**overrides):
    base = dict(prompts=PROMPTS, num_completions=4, batch_size=4, max_new_tokens=96, temperature=0.0)
    cfg = load_config("example", embedded=True, overrides={**base, "dtype": "float32", "device": "cuda", **overrides})
    e = load_engine(cfg, need_assistant=True)
    assert type(e).__name__ == "FastEngine", e.settings.notes
    return e


@pytest.fixture(scope="module")
def device_cache():
    return engine(cache_implementation="static")


def tokens(out):
    return [r.token_ids for r in out.rows]


def test_offloaded_equals_the_device_cache(device_cache):
    off = engine(cache_implementation="offloaded")
    assert off.kv_kind == "offloaded" and off.cache.host_k[0].is_pinned()
    index = [0, 1, 2, 0]
    want = tokens(device_cache.generate(index, do_sample=False))
    assert tokens(off.generate(index, do_sample=False)) == want
    assert tokens(off.draft_and_verify(index, do_sample=False)) == want
    beams = dict(do_sample=False, num_beams=4, num_return_sequences=4)
    assert tokens(off.generate([2], **beams)) == tokens(device_cache.generate([2], **beams))


@pytest.mark.parametrize("kind", ["int8", "fp8"])
def test_quantized_agrees_with_the_device_cache(device_cache, kind):
    quant = engine(cache_implementation="quantized", kv_cache_dtype=kind)
    index = [0, 1, 2, 0]
    want = tokens(device_cache.generate(index, do_sample=False))
    for got in (tokens(quant.generate(index, do_sample=False)), tokens(quant.draft_and_verify(index, do_sample=False))):
        same = sum(sum(x == y for x, y in zip(a, b, strict=False)) for a, b in zip(want, got, strict=True))
        total = sum(max(len(a), len(b)) for a, b in zip(want, got, strict=True))
        print(f"{kind}: {same / total:.3f} of greedy tokens agree")
        assert same / total >= AGREEMENT
