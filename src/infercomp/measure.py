"""Measurement: clocks that wait for the device, peak-memory trackers, token counting, statistics.

On CUDA, kernels run asynchronously: the device is synchronized before every clock read, or the
host clock would stop before the work does.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def timed_call(fn: Callable[[], Any], device: str) -> tuple[Any, float]:
    """Run fn and return (value, seconds), the device synchronized on both sides."""
    synchronize(device)
    start = time.perf_counter()
    value = fn()
    synchronize(device)
    return value, time.perf_counter() - start


class PeakMemory:
    """Peak memory over a `with` block.

    CUDA: `torch.cuda.max_memory_allocated` after resetting the peak (what tensors held; the
    weights included). CPU: the process's resident set size, sampled every few milliseconds by a
    thread (CUDA's counter reads 0 on CPU, so it cannot be used there).
    """

    def __init__(self, device: str, interval_s: float = 0.005):
        self.device = device
        self.interval_s = interval_s
        self.peak_bytes = 0
        self.kind = "cuda_max_memory_allocated" if device.startswith("cuda") else "process_rss"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        if self.kind == "process_rss":
            import psutil

            proc = psutil.Process()
            self.peak_bytes = proc.memory_info().rss

            def sample() -> None:
                while not self._stop.wait(self.interval_s):
                    self.peak_bytes = max(self.peak_bytes, proc.memory_info().rss)

            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
        else:
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            import psutil

            self.peak_bytes = max(self.peak_bytes, psutil.Process().memory_info().rss)
        else:
            import torch

            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)


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


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else float("nan")
