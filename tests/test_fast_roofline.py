"""What the roofline counts as a fast-engine step's KV-cache reads: each row's valid slots where
fast.attend's kernel serves the steps (one query a row, or with fast.attend.BLOCKS a verify
pass's few), every slot where a captured step reads them all (the unfused path's mask spans the
cache, a beam step reorders it, an offloaded cache stages it), and nothing on CPU, where the roofline
takes the context or, for a static cache, the whole cache."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from tests.test_fast_engine import tiny_engine
from tests.test_speculative_sampling import tiny_qwen3

from infercomp.calls import CallOutput, Row
from infercomp.collect import MethodRun
from infercomp.fast import attend
from infercomp.measure.memory import kv_bytes_per_token

VALID = {"attended_slots": None, "reads_valid_keys": True}


def test_the_engine_reports_valid_slots_only_where_the_kernel_attends_plain_steps(monkeypatch):
    fast = tiny_engine(2)
    every = {"attended_slots": fast.cap.slots, "reads_valid_keys": False}
    assert fast._attention_reads(1) == {"attended_slots": None, "reads_valid_keys": False}  # CPU
    monkeypatch.setattr(fast.rt, "cuda", True)  # the account of captured steps
    heads, hd = fast.lean.shape.heads, fast.lean.shape.head_dim
    asked = []
    for kernel in (True, False):
        monkeypatch.setattr(attend, "serves", lambda xq, k, v, k_scale, kernel=kernel: asked.append(xq) or kernel)
        # plain steps (1 query a row) and verify passes (k + 1): as the kernel serves them
        assert fast._attention_reads(1) == fast._attention_reads(5) == (VALID if kernel else every)
        assert fast._attention_reads(0) == every  # beam steps reorder every slot
    shapes = {(tuple(q.shape), q.dtype) for q in asked}
    assert shapes == {((1, n, heads, hd), fast.lean.dtype) for n in (1, 5)}  # the steps' queries, (B, q, heads, hd)
    monkeypatch.setattr(attend, "serves", lambda *a: True)
    monkeypatch.setattr(fast.cache, "kind", "offloaded")  # every step stages the whole cache
    assert fast._attention_reads(1) == every


def _shape(reads_valid_keys: bool, attended_slots: int | None):
    """MethodRun._call_shape of one 2-row call (8-token prompt, 5 new) on a static cache of 40 slots."""
    model = tiny_qwen3(0)
    cache_bytes = kv_bytes_per_token(model) * 2 * 40
    run = SimpleNamespace(
        engine=SimpleNamespace(settings=SimpleNamespace(cache_implementation="static")),
        kv_kind=None,
        models_used=lambda: [model],
    )
    rows = [Row(0, 8, [1] * 5, "length"), Row(0, 8, [1] * 5, "length")]
    out = CallOutput(1.0, rows, 0.1, 0.01, 13, kv_cache_bytes=cache_bytes, attended_slots=attended_slots,
                     reads_valid_keys=reads_valid_keys)  # fmt: skip
    return MethodRun._call_shape(run, out)


@pytest.mark.parametrize("reads_valid_keys", [True, False])
def test_a_static_cache_counts_whole_only_where_the_steps_read_all_of_it(reads_valid_keys):
    shape = _shape(reads_valid_keys, attended_slots=None)
    assert shape.static_slots == (None if reads_valid_keys else 40)  # None: the context, prompt + N / 2
    assert _shape(False, attended_slots=24).static_slots == 24


def test_each_kind_of_call_gives_its_own_account(monkeypatch):
    """Plain decoding asks for the account of one query a row, beam search for none (its steps
    reorder every slot), draft-and-verify for its k + 1 queries a row."""
    fast = tiny_engine(2)
    asked = []
    account = fast._attention_reads
    monkeypatch.setattr(fast, "_attention_reads", lambda queries: asked.append(queries) or account(queries))
    fast.generate([0, 1], do_sample=False)
    fast.generate([0], do_sample=False, num_beams=2, num_return_sequences=2)
    fast.draft_and_verify([0, 1], do_sample=False)
    assert asked == [1, 0, fast.k_max + 1]  # a verify pass scores k_max + 1 tokens a row (adaptive k: 2k)
