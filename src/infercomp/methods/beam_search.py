"""beam_search: one call per prompt; that prompt's completion count is both the number of beams
and the number of returned sequences. Deterministic: sampling settings are ignored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infercomp.methods.base import Method
from infercomp.methods.registry import register


@dataclass(frozen=True)
class BeamSearch(Method):
    def generation_kwargs(self, config, n_sequences: int) -> dict[str, Any]:
        # With one completion this is one beam, i.e. greedy search.
        return {"do_sample": False, "num_beams": n_sequences, "num_return_sequences": n_sequences}

    def run_call(self, engine, prompt_indices: list[int]):
        # The call holds one prompt once; generate returns its n beams as n rows.
        kwargs = self.generation_kwargs(engine.config, len(prompt_indices))
        return [engine.generate(prompt_indices[:1], **kwargs)]


BEAM_SEARCH = register(
    BeamSearch(
        name="beam_search",
        summary="one call per prompt; its completions are the returned beams",
        batching="per_prompt",
    )
)
