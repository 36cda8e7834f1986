"""The speculative variants: `<base>_speculative` drafts with the assistant model and verifies
with the main model, through transformers' assisted generation.

Assisted generation runs only one sequence per call, so variants of batched methods run their
calls one row at a time and say so (`execution: per-sequence`). It cannot verify beams (given an
assistant and beams it silently runs plain beam search) and refuses static caches, so those
variants are skipped with that reason rather than run as something they are not. If the
assistant could not be loaded, a variant runs its base method and records why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infercomp.methods import BASE_METHODS, get_method, register
from infercomp.methods.base import Method

BEAMS_REASON = (
    "not applicable: transformers' assisted generation cannot verify beams (with num_beams > 1 "
    "it drops the assistant and runs plain beam search)"
)
STATIC_REASON = (
    "assisted generation refuses static caches (transformers: 'assisted generate is not "
    "supported with Static cache classes'); run with cache_implementation 'dynamic'"
)


@dataclass(frozen=True)
class Speculative(Method):
    base: Method | None = None

    def generation_kwargs(self, config, n_sequences: int) -> dict[str, Any]:
        return self.base.generation_kwargs(config, n_sequences)

    def skip_reason(self, engine) -> str | None:
        if self.base.batching == "per_prompt":
            return BEAMS_REASON
        if engine.assistant is not None and engine.settings.cache_implementation == "static":
            return STATIC_REASON
        return None

    def fallback_reason(self, engine) -> str | None:
        if engine.assistant is None:
            return f"ran {self.base.name} without speculation: {engine.assistant_error}"
        return None

    def execution(self, engine=None) -> str:
        if engine is not None and engine.assistant is None:
            return self.base.execution(engine)
        if self.base.batching == "single":
            return "assisted, batch 1"
        return "per-sequence"

    def run_call(self, engine, prompt_indices: list[int]):
        if engine.assistant is None:
            return self.base.run_call(engine, prompt_indices)
        kwargs = self.generation_kwargs(engine.config, 1)
        # One row at a time: the planned call's rows become separate assisted calls.
        return [engine.generate([p], use_assistant=True, **kwargs) for p in prompt_indices]


for _base_name in BASE_METHODS:
    _base = get_method(_base_name)
    register(
        Speculative(
            name=f"{_base_name}_speculative",
            summary=f"{_base_name} with assistant drafts verified by the main model",
            batching=_base.batching,
            base=_base,
        )
    )
