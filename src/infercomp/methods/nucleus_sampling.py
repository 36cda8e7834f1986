"""nucleus_sampling: batched like `batched`, but always samples with fixed top_p 0.9 and
temperature 0.8 (top-k off), whatever the config's sampling settings say."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infercomp.methods.base import Method, sampling_kwargs
from infercomp.methods.registry import register

TOP_P, TEMPERATURE = 0.9, 0.8


@dataclass(frozen=True)
class NucleusSampling(Method):
    def generation_kwargs(self, config, n_sequences: int) -> dict[str, Any]:
        # top_k=0 switches top-k filtering off, so only the nucleus (top-p) cut applies.
        return sampling_kwargs(TEMPERATURE, TOP_P, 0)


NUCLEUS_SAMPLING = register(
    NucleusSampling(
        name="nucleus_sampling",
        summary=f"batched top-p sampling with fixed top_p={TOP_P}, temperature={TEMPERATURE}",
        batching="fill",
    )
)
