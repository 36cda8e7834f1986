"""What one call of an engine returns: its rows (one per returned sequence) and its times.

Both engines and every method speak in these records; the collection of a method's samples
(`collect.py`) reads them. Plain data: no torch, no model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Row:
    """One returned sequence of a call."""

    prompt_index: int
    prompt_tokens: int
    token_ids: list[int]  # the counted new tokens (up to and including the first EOS)
    finish: str  # "eos" or "length"
    score: float | None = None  # beam search: the hypothesis' score (summed log-prob / length ** penalty)


@dataclass
class CallOutput:
    """One generate call: its wall time, latency breakdown and rows."""

    seconds: float
    rows: list[Row]
    ttft_s: float | None = None  # prefill and first token
    inter_token_latency_s: float | None = None  # decode seconds per generated position
    context_tokens: int = 0  # padded prompt length + generated positions: the longest row's context
    speculative: Any = None  # SpecStats of a draft-and-verify call
    compile_s: float = 0.0  # fast engine: compiling / capturing new shapes before this call's clock started
    kv_cache_bytes: int | None = None  # bytes of the KV cache tensors the call left (measured)
    attended_slots: int | None = None  # cache slots every step's attention reads, where fixed (fast engine on GPU)
    reads_valid_keys: bool = False  # the steps' attention reads each row's valid slots only (fast.attend's kernel)
