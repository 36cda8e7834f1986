"""The speculative variants: `<base>_speculative` drafts with the assistant model (or n-grams
from the context, `draft_source: prompt_lookup`) and verifies with the main model, through
infercomp's own draft-and-verify engine (`infercomp.speculative.engine`).

Unlike transformers' assisted generation, the engine runs whole batches with rows that accept
different numbers of tokens, several completions per prompt, and static caches, and it counts
what was drafted and accepted. Its greedy output is the main model's greedy output and its
sampled output follows the main model's sampling distribution.

Beam search has no variant worth running: see BEAMS_REASON. If the assistant cannot be loaded,
a variant runs its base method and records why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infercomp.methods import BASE_METHODS, get_method, register
from infercomp.methods.base import Method

BEAMS_REASON = (
    "not applicable: ran plain beam search. Beam search re-ranks all beams' continuations at every "
    "step, so a drafted continuation of one beam is only useful if the beam set stays on it for k "
    "steps; verifying all candidates exactly costs B x V scores per drafted position, so no draft "
    "saves main-model passes without changing the result"
)
CACHE_REASON = "the speculative engine supports the 'dynamic' and 'static' caches; got {cache!r}"


@dataclass(frozen=True)
class Speculative(Method):
    base: Method | None = None

    def generation_kwargs(self, config, n_sequences: int) -> dict[str, Any]:
        return self.base.generation_kwargs(config, n_sequences)

    def skip_reason(self, engine) -> str | None:
        cache = engine.settings.cache_implementation
        fast = getattr(engine.settings, "engine", "transformers") == "fast"
        from infercomp.fast import FAST_CACHES

        own = FAST_CACHES if fast else ("dynamic", "static")  # the fast engine drafts over each of its kinds
        if self.drafts(engine) and cache not in own:
            return CACHE_REASON.format(cache=cache)
        return None

    def drafts(self, engine) -> bool:
        """Whether this variant really speculates here (else it runs its base method)."""
        if self.base.batching == "per_prompt":
            return False
        return engine.config.draft_source == "prompt_lookup" or engine.assistant is not None

    def speculation_note(self, engine) -> str | None:
        return BEAMS_REASON if self.base.batching == "per_prompt" else None

    def fallback_reason(self, engine) -> str | None:
        if self.base.batching != "per_prompt" and not self.drafts(engine):
            return f"ran {self.base.name} without speculation: {engine.assistant_error}"
        return None

    def execution(self, engine=None) -> str:
        if engine is not None and not self.drafts(engine):
            return self.base.execution(engine)
        return "speculative, batch 1" if self.base.batching == "single" else "speculative, batched"

    def run_call(self, engine, prompt_indices: list[int]):
        if not self.drafts(engine):
            return self.base.run_call(engine, prompt_indices)
        return [engine.speculative(prompt_indices, **self.generation_kwargs(engine.config, len(prompt_indices)))]


for _base_name in BASE_METHODS:
    _base = get_method(_base_name)
    register(
        Speculative(
            name=f"{_base_name}_speculative",
            summary=f"{_base_name} with drafts verified by the main model (infercomp's engine)",
            batching=_base.batching,
            base=_base,
        )
    )
