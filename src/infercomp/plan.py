"""Planning: prompts x completions -> the generate calls each method makes.

Pure Python, no model: `infercomp plan` prints this before anything is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from infercomp.config import Config
from infercomp.methods import get_method
from infercomp.methods.base import Batching


@dataclass(frozen=True)
class MethodPlan:
    method: str
    # Each inner list is one planned call, as the prompt index of every completion it yields.
    batches: list[list[int]]


def flat_completions(counts: list[int]) -> list[int]:
    """[3, 2] -> [0, 0, 0, 1, 1]: one entry per completion, prompts in order."""
    return [p for p, n in enumerate(counts) for _ in range(n)]


def batches_for(batching: Batching, counts: list[int], batch_size: int) -> list[list[int]]:
    flat = flat_completions(counts)
    if batching == "single":
        return [[p] for p in flat]
    if batching == "fill":
        return [flat[i : i + batch_size] for i in range(0, len(flat), batch_size)]
    if batching == "per_prompt":
        return [[p] * n for p, n in enumerate(counts)]
    raise ValueError(f"unknown batching {batching!r}")


def make_plan(config: Config) -> list[MethodPlan]:
    counts = config.completions_per_prompt()
    return [
        MethodPlan(name, batches_for(get_method(name).batching, counts, config.batch_size))
        for name in config.selected_methods()
    ]


def plan_as_dict(plans: list[MethodPlan]) -> dict:
    return {"methods": {p.method: {"batches": p.batches} for p in plans}}
