"""A toy method, as a new method is added: this one module, plus one `register(METHOD)`.

Greedy decoding with a repetition penalty. Stock generate() runs it (the reference engine);
the fast engine does not implement the penalty, so it refuses the method with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infercomp.methods import Method

PENALTY = 2.0


@dataclass(frozen=True)
class GreedyRepetitionPenalty(Method):
    def generation_kwargs(self, config, n_sequences: int) -> dict[str, Any]:
        return {"do_sample": False, "repetition_penalty": PENALTY}


METHOD = GreedyRepetitionPenalty(
    name="greedy_repetition_penalty",
    summary=f"greedy, repeated tokens' logits divided by {PENALTY}, batched",
    batching="fill",
)
