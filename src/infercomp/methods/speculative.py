"""The speculative variants: `<base>_speculative` drafts with the assistant model (or n-grams
from the context, `draft_source: prompt_lookup`) and verifies with the main model, through
infercomp's own draft-and-verify decoding, never transformers' assisted generation.

It runs whole batches with rows that accept different numbers of tokens, several completions
per prompt, and static caches, and it counts what was drafted and accepted. Its greedy output
is the main model's greedy output and its sampled output follows the main model's sampling
distribution. On the reference engine a call runs `speculative.draft_verify` over the loaded
transformers models; the fast engine runs the same algorithm as captured device steps
(`FastEngine.draft_and_verify`).

Beam search has no variant worth running: see BEAMS_REASON. If the assistant cannot be loaded,
a variant runs its base method and records why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infercomp.calls import CallOutput, Row
from infercomp.measure.timing import count_new_tokens
from infercomp.methods.base import Method
from infercomp.methods.registry import BASE_METHODS, get_method, register

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
        # the cache kinds this engine drafts and verifies over (the fast engine: each of its own)
        own = getattr(engine, "speculative_caches", ("dynamic", "static"))
        if self.speculates(engine) and cache not in own:
            return CACHE_REASON.format(cache=cache)
        return self.base.skip_reason(engine)

    def speculates(self, engine) -> bool:
        """Whether this variant really drafts and verifies here (else it runs its base method)."""
        if self.base.batching == "per_prompt":
            return False
        return engine.config.draft_source == "prompt_lookup" or engine.assistant is not None

    def uses_assistant(self, engine) -> bool:
        return self.speculates(engine) and engine.config.draft_source == "assistant"

    def speculation_note(self, engine) -> str | None:
        return BEAMS_REASON if self.base.batching == "per_prompt" else None

    def fallback_reason(self, engine) -> str | None:
        if self.base.batching != "per_prompt" and not self.speculates(engine):
            return f"ran {self.base.name} without speculation: {engine.assistant_error}"
        return None

    def execution(self, engine=None) -> str:
        if engine is not None and not self.speculates(engine):
            return self.base.execution(engine)
        return "speculative, batch 1" if self.base.batching == "single" else "speculative, batched"

    def run_call(self, engine, prompt_indices: list[int]) -> list[CallOutput]:
        if not self.speculates(engine):
            return self.base.run_call(engine, prompt_indices)
        kwargs = self.generation_kwargs(engine.config, len(prompt_indices))
        if engine.settings.engine == "fast":
            return [engine.draft_and_verify(prompt_indices, **kwargs)]
        return [draft_and_verify_reference(engine, prompt_indices, **kwargs)]


def draft_and_verify_reference(engine, prompt_indices: list[int], **kwargs: Any) -> CallOutput:
    """One timed draft-and-verify call on the reference engine's models, batched (ragged rows)."""
    from infercomp.speculative.draft_verify import ModelDrafter, PromptLookupDrafter, Sampling, speculative_generate

    cfg, settings = engine.config, engine.settings
    prompts = [engine.tokenizer(cfg.prompts[i])["input_ids"] for i in prompt_indices]
    sampling = Sampling(
        do_sample=kwargs.get("do_sample", False),
        temperature=kwargs.get("temperature", 1.0),
        top_k=kwargs.get("top_k", 0) or 0,
        top_p=kwargs.get("top_p", 1.0),
    )
    if cfg.draft_source == "prompt_lookup":
        drafter = PromptLookupDrafter(max_ngram=cfg.prompt_lookup_max_ngram)
    else:
        drafter = ModelDrafter(engine.assistant)
    out = speculative_generate(
        engine.main,
        drafter,
        prompts,
        cfg.max_new_tokens,
        sampling,
        cfg.num_assistant_tokens,
        engine.eos_ids,
        engine.tokenizer.pad_token_id,
        cache_kind=settings.cache_implementation,
        fixed_length=settings.fixed_length,
        adaptive=cfg.adaptive_draft,
        device=settings.device,
    )
    rows = []
    for p, prompt, ids in zip(prompt_indices, prompts, out.tokens, strict=True):
        n, finish = count_new_tokens(ids, engine.eos_ids, settings.fixed_length)
        rows.append(Row(p, len(prompt), ids[:n], finish))
    longest = max(len(r.token_ids) for r in rows)
    itl = (out.seconds - out.ttft_s) / (longest - 1) if longest > 1 else None
    return CallOutput(
        seconds=out.seconds,
        rows=rows,
        ttft_s=out.ttft_s,
        inter_token_latency_s=itl,
        context_tokens=max(len(p) for p in prompts) + longest,
        speculative=out.stats,
        kv_cache_bytes=out.kv_cache_bytes,
    )


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
