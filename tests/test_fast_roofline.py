"""What the roofline counts as a fast-engine step's KV-cache reads: each row's valid slots where
fast.attend's kernel serves one query per row, every slot where a captured step attends unfused
(its mask spans the whole cache), and the context on CPU."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from tests.test_fast_engine import tiny_engine
from tests.test_speculative_sampling import tiny_qwen3

from infercomp.calls import CallOutput, Row
from infercomp.collect import MethodRun
from infercomp.fast import attend
from infercomp.measure.memory import kv_bytes_per_token


def test_the_engine_reports_valid_slots_only_where_the_kernel_attends(monkeypatch):
    fast = tiny_engine(2)
    assert fast._attention_reads(one_query=True) == {"attended_slots": None, "reads_valid_keys": False}  # CPU
    monkeypatch.setattr(fast.rt, "cuda", True)  # the account of captured steps
    heads, hd = fast.lean.shape.heads, fast.lean.shape.head_dim
    asked = []
    for kernel in (True, False):
        monkeypatch.setattr(attend, "serves", lambda xq, k, v, k_scale, kernel=kernel: asked.append(xq.shape) or kernel)
        one = fast._attention_reads(one_query=True)
        assert one == ({"attended_slots": None, "reads_valid_keys": True} if kernel else
                       {"attended_slots": fast.cap.slots, "reads_valid_keys": False})  # fmt: skip
        # a verify pass (k + 1 queries a row) attends unfused over every slot, kernel or not
        assert fast._attention_reads(one_query=False) == {"attended_slots": fast.cap.slots, "reads_valid_keys": False}
    assert {tuple(s) for s in asked} == {(1, 1, heads, hd)}  # asked about a step's query, (B, q, heads, hd)


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
