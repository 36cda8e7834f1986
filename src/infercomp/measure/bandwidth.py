"""The device's memory bandwidth, measured once per run with a large copy (bytes read + written)."""

from __future__ import annotations

import time


def measure_bandwidth_gbs(device: str, megabytes: int | None = None, repeats: int = 5) -> float:
    """Median GB/s of copying one buffer into another on `device` (counts read and write)."""
    import torch

    from infercomp.measure.timing import synchronize

    size = (megabytes or (2048 if device.startswith("cuda") else 256)) * 1024 * 1024
    src = torch.empty(size, dtype=torch.uint8, device=device).random_(0, 255)  # never time on zeros
    dst = torch.empty_like(src)
    dst.copy_(src)  # warm-up
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        dst.copy_(src)
        synchronize(device)
        times.append(time.perf_counter() - start)
    del src, dst
    times.sort()
    return 2 * size / times[len(times) // 2] / 1e9
