"""Roofline per forward pass: the bytes a pass reads, and where the figure is not meaningful."""

from __future__ import annotations

import pytest
from tests.test_speculative_sampling import tiny_qwen3

from infercomp.measure import roofline as rl
from infercomp.measure.memory import kv_bytes_per_token, weight_bytes


def test_untied_embeddings_count_one_row_per_token():
    model = tiny_qwen3(0)  # untied: a 6 x 16 input table, read one row per fed token
    table, row = 6 * 16 * 4, 16 * 4
    assert rl.weight_bytes_per_pass(model, 1) == weight_bytes(model) - table + row
    assert rl.weight_bytes_per_pass(model, 3) == weight_bytes(model) - table + 3 * row
    assert rl.weight_bytes_per_pass(model, 100) == weight_bytes(model)  # never more than the table


def test_tied_embeddings_are_read_whole_by_the_head(embedded_pair):
    main = embedded_pair[1]
    assert main.get_output_embeddings().weight.data_ptr() == main.get_input_embeddings().weight.data_ptr()
    assert rl.weight_bytes_per_pass(main, 1) == weight_bytes(main)


def test_kv_read_at_each_steps_context_prompt_included():
    model = tiny_qwen3(0)
    per_token = kv_bytes_per_token(model)
    # 2 rows, padded prompt 10, 5 positions: steps t = 1..4 read 10 + t positions, mean 12.5.
    _, kv = rl.call_bytes(model, per_token, rl.CallShape(2, 10, 5, 4, 0.01), speculative=False)
    assert kv == per_token * 2 * 12.5
    # A static cache is read over its whole preallocated length, whatever the context.
    _, kv = rl.call_bytes(model, per_token, rl.CallShape(2, 10, 5, 4, 0.01, static_slots=40), speculative=False)
    assert kv == per_token * 2 * 40


def test_small_models_are_marked_not_meaningful(monkeypatch):
    model = tiny_qwen3(0)
    calls = [rl.CallShape(1, 8, 9, 8, 0.002), rl.CallShape(4, 12, 5, 4, 0.004)]
    out = rl.roofline(model, calls, bandwidth_gbs=10.0, speculative=False)
    assert out["meaningful"] is False and out["note"].startswith("not meaningful")
    assert out["step_time_s"] == pytest.approx((8 * 0.002 + 4 * 0.004) / 12)
    assert out["share"] == pytest.approx(out["achieved_gbs"] / 10.0)
    monkeypatch.setattr(rl, "MEANINGFUL_BYTES", 0)
    big = rl.roofline(model, calls, bandwidth_gbs=10.0, speculative=True)
    assert big["meaningful"] is True and big["note"] is None and big["pass_kind"].startswith("verify")
    assert rl.roofline(model, calls, None, False) == {"unavailable": "no bandwidth measured"}
