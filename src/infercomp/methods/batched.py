"""batched: completions packed into calls of `batch_size` rows, across prompts in order
(left-padded), with the config's sampling settings."""

from infercomp.methods.base import Method
from infercomp.methods.registry import register

BATCHED = register(
    Method(
        name="batched",
        summary="batch_size completions per call, filled across prompts in order",
        batching="fill",
    )
)
