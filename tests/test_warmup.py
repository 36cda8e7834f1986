"""Warm-up covers every call shape the plan uses, so no timed repeat pays a one-time cost.

A stub engine and method stand in for the models: a call's reported time is 20x longer the first
time its (rows, padded prompt tokens) shape is met, as a compile or a first allocation would be.
"""

from __future__ import annotations

import statistics
from types import SimpleNamespace

from infercomp.calls import CallOutput, Row
from infercomp.collect import MethodRun
from infercomp.config import load_config
from infercomp.plan import MethodPlan
from infercomp.runner import run_experiment

PROMPTS = ["a b c", "a b c d e f g", "a"]  # 3, 7 and 1 tokens with the stub tokenizer


class StubEngine:
    def __init__(self, warmup_runs: int = 1):
        self.config = SimpleNamespace(prompts=PROMPTS, warmup_runs=warmup_runs, repeats=3, seed=0)
        self.settings = SimpleNamespace(device="cpu", cache_implementation="dynamic")

    def tokenizer(self, text: str) -> dict:
        return {"input_ids": text.split()}

    def decode(self, ids: list[int]) -> str:
        return " ".join(map(str, ids))

    def free(self) -> None:
        pass


class ShapeCostMethod:
    """Every call takes 1 s, except the first of each shape, which takes 20 s."""

    name = "stub"

    def __init__(self):
        self.seen: set[tuple[int, int]] = set()
        self.log: list[tuple[int, int]] = []

    def skip_reason(self, engine):
        return None

    def run_call(self, engine, batch):
        shape = (len(batch), max(len(PROMPTS[p].split()) for p in batch))
        self.log.append(shape)
        seconds = 1.0 if shape in self.seen else 20.0
        self.seen.add(shape)
        rows = [Row(p, shape[1], [1, 2, 3], "length") for p in batch]
        return [CallOutput(seconds=seconds, rows=rows)]


def run_stub(batches, warmup_runs=1):
    method = ShapeCostMethod()
    run = MethodRun(StubEngine(warmup_runs), method, MethodPlan("stub", batches), None)
    run.warm_up()
    warmed = list(method.log)
    for repeat in range(3):
        run.measure_repeat(repeat, None)
    assert run.error is None, run.error
    return run, method, warmed


def test_every_distinct_shape_is_warmed_before_timing():
    batches = [[0, 0], [0, 1], [2, 2], [0, 0], [1]]  # shapes (2,3) (2,7) (2,1) (2,3) (1,7)
    run, method, warmed = run_stub(batches)
    assert set(warmed) == {(2, 3), (2, 7), (2, 1), (1, 7)} == set(run.warmup_shapes)
    assert run.warmup_time_s == 4 * 20.0 and run.warmup_first_call_s == 20.0
    totals = [s.total_time_s for s in run.samples]
    assert totals[0] == statistics.median(totals[1:])  # repeat 0 is no outlier


def test_without_warm_up_repeat_zero_shows_the_one_time_costs():
    """The same check fails where warm-up is off: the stub's costs are visible to it."""
    run, _, warmed = run_stub([[0, 0], [0, 1]], warmup_runs=0)
    totals = [s.total_time_s for s in run.samples]
    assert warmed == [] and run.warmup_shapes == [] and run.warmup_time_s is None
    assert totals[0] > 1.1 * statistics.median(totals[1:])


def test_a_run_records_the_shapes_it_warmed(tmp_path):
    cfg = load_config(
        "example",
        embedded=True,
        overrides={
            "prompts": ["Once upon a time", "generate short bed time story containing word dog and sausage"],
            "num_completions": [3, 1],
            "batch_size": 2,
            "max_new_tokens": 4,
            "methods_to_test": ["batched"],
            "repeats": 1,
            "temperature": 0.0,
        },
    )
    res = run_experiment(cfg, tmp_path)
    s = res.methods["batched"].summary
    # Calls [0, 0] and [0, 1]: two rows each, padded to the first prompt's or the second's length.
    short, long = (c.prompt_tokens for c in res.methods["batched"].completions[2:4])
    assert s.warmup_shapes == [[2, short], [2, long]] and short < long
    assert s.warmup_time_s >= s.warmup_first_call_s > 0
    assert res.settings["auto_compile"] == "no"  # CPU: transformers compiles nothing by itself
