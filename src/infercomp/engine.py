"""The engine: the loaded models and settings, and the one timed generate call every method uses.

Methods decide which prompts go into a call and with which generation settings; the engine
tokenizes, generates, times and turns the output into per-completion rows.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from transformers import StoppingCriteriaList

from infercomp.calls import CallOutput, Row
from infercomp.config import Config
from infercomp.measure.memory import cache_tensor_bytes
from infercomp.measure.timing import StepClock, count_new_tokens, synchronize
from infercomp.models import (
    ModelLoadError,
    Settings,
    load_model,
    load_tokenizer,
    parameter_count,
    resolve_settings,
    timed_load,
)


class Engine:
    def __init__(
        self,
        config: Config,
        settings: Settings,
        tokenizer,
        main,
        assistant,
        assistant_error,
        load_seconds: dict[str, float],
    ):
        self.config = config
        self.settings = settings
        self.tokenizer = tokenizer
        self.main = main
        self.assistant = assistant
        self.assistant_error = assistant_error
        self.load_seconds = load_seconds
        eos = main.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {e for e in eos + [tokenizer.eos_token_id] if e is not None}

    @classmethod
    def load_reference(cls, config: Config, need_assistant: bool, quantize: bool = True) -> Engine:
        """The reference engine: stock generate() and the draft-and-verify code over transformers.
        `quantize`: apply the settings' torchao quantization now (False: the caller does it)."""
        settings = resolve_settings(config)
        tokenizer = load_tokenizer(config.main_model, settings.load_format)
        main, main_s = timed_load(load_model, config.main_model, settings, config, config.seed)
        assistant, assistant_error, load_seconds = None, None, {"main": main_s}
        if need_assistant:
            if not config.assistant_model:
                assistant_error = "no assistant_model in the config"
            else:
                try:
                    assistant, load_seconds["assistant"] = timed_load(
                        load_model, config.assistant_model, settings, config, config.seed + 1
                    )
                except ModelLoadError as exc:
                    assistant_error = f"assistant could not be loaded: {exc}"
        for model in (main, assistant):
            if model is not None:
                model.generation_config.pad_token_id = tokenizer.pad_token_id
        engine = cls(config, settings, tokenizer, main, assistant, assistant_error, load_seconds)
        if quantize:
            from infercomp.quant_apply import apply

            apply(engine)
        return engine

    def describe_models(self) -> dict[str, Any]:
        out = {
            "main": {
                "name": self.config.main_model,
                "parameters": parameter_count(self.main),
                "load_seconds": round(self.load_seconds["main"], 3),
            }
        }
        if self.assistant is not None:
            out["assistant"] = {
                "name": self.config.assistant_model,
                "parameters": parameter_count(self.assistant),
                "load_seconds": round(self.load_seconds["assistant"], 3),
            }
        elif self.assistant_error:
            out["assistant"] = {"name": self.config.assistant_model, "error": self.assistant_error}
        return out

    def generation_defaults(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.config.max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if self.settings.fixed_length:
            kwargs["min_new_tokens"] = self.config.max_new_tokens
        cache = self.settings.cache_implementation
        if cache != "dynamic":
            kwargs["cache_implementation"] = cache
        if cache == "quantized":
            head_dim = getattr(self.main.config, "head_dim", 64)
            # quanto groups must divide head_dim (64 by default, too large for tiny models).
            kwargs["cache_config"] = {"backend": "quanto", "nbits": 4, "q_group_size": min(64, head_dim)}
        return kwargs

    def unsupported(self, generation_kwargs: dict[str, Any]) -> str | None:
        """None: stock generate() takes every transformers generation setting."""
        return None

    @torch.inference_mode()
    def generate(self, prompt_indices: list[int], **kwargs: Any) -> CallOutput:
        """One timed generate call over the given prompts (left-padded into one batch)."""
        texts = [self.config.prompts[i] for i in prompt_indices]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True).to(self.settings.device)
        clock = StepClock(self.settings.device)
        call_kwargs = {
            **self.generation_defaults(),
            **kwargs,
            "stopping_criteria": StoppingCriteriaList([clock]),
            "return_dict_in_generate": True,  # hands back the cache, so its bytes can be measured
        }
        clock.begin()
        result = self.main.generate(**enc, **call_kwargs)
        synchronize(self.settings.device)
        seconds = time.perf_counter() - clock.start
        out = result.sequences
        cache = getattr(result, "past_key_values", None)
        kv_bytes = None if cache is None else cache_tensor_bytes(cache)
        del result, cache
        new = out[:, enc["input_ids"].shape[1] :].tolist()  # (rows, new tokens)
        per_input = len(new) // len(prompt_indices)  # beams / returned sequences per input row
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        rows = []
        for r, ids in enumerate(new):
            n, finish = count_new_tokens(ids, self.eos_ids, self.settings.fixed_length)
            src = r // per_input
            rows.append(Row(prompt_indices[src], int(prompt_lens[src]), ids[:n], finish))
        return CallOutput(
            seconds=seconds,
            rows=rows,
            ttft_s=clock.ttft_s(),
            inter_token_latency_s=clock.inter_token_latency_s(),
            context_tokens=int(out.shape[1]),
            kv_cache_bytes=kv_bytes,
        )

    def greedy_reference(self) -> dict[int, list[int]]:
        """Greedy decoding of each prompt alone (batch 1, untimed): what lossless methods must
        reproduce. Computed once per engine."""
        if getattr(self, "_greedy", None) is None:
            self._greedy = {
                p: self.generate([p], do_sample=False).rows[0].token_ids for p in range(len(self.config.prompts))
            }
        return self._greedy

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def free(self) -> None:
        """Release cached device memory after a failure, so later methods start clean."""
        import gc

        gc.collect()
        if self.settings.device.startswith("cuda"):
            torch.cuda.empty_cache()
