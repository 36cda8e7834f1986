"""Marks on the device's timeline (CUDA events) or the host clock (CPU), for the fast engine's
call, first-token and per-round times."""

from __future__ import annotations

import time

import torch


class Clock:
    """Marks on the device's timeline (CUDA events) or the host clock (CPU)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def mark(self):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def seconds(self, a, b) -> float:
        if self.cuda:
            return a.elapsed_time(b) / 1000.0
        return b - a
