"""Clocks that wait for the device, and per-step timestamps inside generate().

On CUDA, kernels run asynchronously: the device is synchronized before every clock read, or the
host clock would stop before the work does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


class StepClock:
    """A stopping criterion that never stops: it timestamps every decoding step.

    generate() calls its stopping criteria once per step with the sequences so far, for plain,
    batched and beam-search decoding alike, which streamers cannot do (they work at batch size 1
    only). The first stamp follows the
    prefill and the first token: time to first token. Later stamps give the decode rate.
    """

    def __init__(self, device: str):
        self.device = device
        self.start = 0.0
        self.stamps: list[tuple[float, int]] = []  # (seconds since start, sequence length)

    def begin(self) -> None:
        self.stamps.clear()
        synchronize(self.device)
        self.start = time.perf_counter()

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        synchronize(self.device)
        self.stamps.append((time.perf_counter() - self.start, int(input_ids.shape[1])))
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    def ttft_s(self) -> float | None:
        return self.stamps[0][0] if self.stamps else None

    def inter_token_latency_s(self) -> float | None:
        """Mean seconds per generated position after the first (decode time per token)."""
        if len(self.stamps) < 2:
            return None
        (t0, n0), (t1, n1) = self.stamps[0], self.stamps[-1]
        return (t1 - t0) / (n1 - n0) if n1 > n0 else None


def count_new_tokens(ids: Sequence[int], eos_ids: set[int], fixed_length: bool) -> tuple[int, str]:
    """How many generated tokens count, and why generation stopped ("eos" or "length").

    Counts up to and including the first EOS: what follows it in a batch is padding. In
    fixed-length mode EOS is not a stop, so every token counts.
    """
    if not fixed_length:
        for i, tok in enumerate(ids):
            if tok in eos_ids:
                return i + 1, "eos"
    return len(ids), "length"
