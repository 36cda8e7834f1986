"""What every method is: how it groups completions into calls, and what it asks of generation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from infercomp.calls import CallOutput


class Config(Protocol):
    """What a method reads of the run's config (infercomp.config.Config has these and more).
    A protocol, so the methods do not import the config module, which asks them for names."""

    temperature: float
    top_p: float
    top_k: int


class Engine(Protocol):
    """What a method uses of the engine it runs on (infercomp.engine.Engine, the fast engine).
    A protocol, so the methods do not import the engines, which import the config."""

    config: Any
    settings: Any
    tokenizer: Any
    main: Any
    assistant: Any
    eos_ids: set[int]

    def generate(self, prompt_indices: list[int], **kwargs: Any) -> CallOutput: ...

    def unsupported(self, generation_kwargs: dict[str, Any]) -> str | None:
        """Why this engine cannot run these generation settings, or None."""
        ...


# How a method groups the flat list of completions into generate calls:
#   single     one completion per call                      [[0], [0], [1]]
#   fill       batches of batch_size, across prompts         [[0, 0, 0, 1], [1, 2, 2, 2]]
#   per_prompt one call per prompt, returning all its completions (as beams)  [[0, 0, 0], [1, 1]]
Batching = Literal["single", "fill", "per_prompt"]


@dataclass(frozen=True)
class Method:
    """A method: a name, a batching rule, and the generation settings it uses."""

    name: str
    summary: str
    batching: Batching

    def generation_kwargs(self, config: Config, n_sequences: int) -> dict[str, Any]:
        """Keyword arguments for `generate` (sampling settings); `n_sequences` is the call's size."""
        return sampling_kwargs(config.temperature, config.top_p, config.top_k)

    def run_call(self, engine: Engine, prompt_indices: list[int]) -> list[CallOutput]:
        """Run one planned call; returns one CallOutput per generate call actually made."""
        return [engine.generate(prompt_indices, **self.generation_kwargs(engine.config, len(prompt_indices)))]

    # What the results record about how a method ran; speculative variants override these.
    def execution(self, engine: Engine | None = None) -> str:
        return {"single": "batch 1", "fill": "batched", "per_prompt": "beams per prompt"}[self.batching]

    def skip_reason(self, engine: Engine) -> str | None:
        """Why this method cannot run with the loaded models and settings, or None: by default,
        the engine's refusal of a generation setting the method asks for."""
        return engine.unsupported(self.generation_kwargs(engine.config, 1))

    def uses_assistant(self, engine: Engine) -> bool:
        """Whether this method's calls run the assistant model (its weights count as used)."""
        return False

    def speculation_note(self, engine: Engine) -> str | None:
        """Why a speculative variant ran without speculation (recorded as `speculation_note`)."""
        return None

    def fallback_reason(self, engine: Engine) -> str | None:
        """Why this method ran as something other than itself (recorded, never silent)."""
        return None


def sampling_kwargs(temperature: float, top_p: float, top_k: int) -> dict[str, Any]:
    """Temperature 0 means greedy; otherwise sample with the given temperature, top_p, top_k."""
    if temperature == 0.0:
        return {"do_sample": False}
    return {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": top_k}


def recorded_generation(method: Method, config: Config, batches: list[list[int]]) -> dict[str, Any]:
    """The generation settings the planned calls used. A setting that differs between calls
    (beam search's num_beams follows each prompt's completion count) is recorded as the list of
    its values, one per call."""
    per_call = [method.generation_kwargs(config, len(batch)) for batch in batches] or [
        method.generation_kwargs(config, 1)
    ]
    merged: dict[str, Any] = {}
    for key in per_call[0]:
        values = [kw.get(key) for kw in per_call]
        merged[key] = values[0] if all(v == values[0] for v in values) else values
    return merged
