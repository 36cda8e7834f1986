"""What only a tensor-parallel run measures: all-reduce bandwidth, time in collectives, and the
per-rank figures gathered to rank 0.

- All-reduce bandwidth: a timed all_reduce of one buffer (256 MiB on GPU, 32 MiB on CPU), median
  of 5 after a warm-up. `algbw` = bytes / time; `busbw` = algbw x 2(n-1)/n, the share of each
  link's bandwidth a ring all-reduce uses (the NCCL tests' convention), comparable across n.
- Time in collectives: one extra, untimed call of a method under torch.profiler. On CUDA, the
  union of the intervals of the NCCL kernels on the device (it includes time a kernel waits for
  a slower rank); on CPU, the union of the intervals of the collective ops (c10d, gloo) on the
  thread that runs the model, i.e. the time that thread is blocked in them. The profiler slows
  the host side of that call, so its wall time is recorded next to the collective time.
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

CPU_COLLECTIVE_MARKERS = ("c10d", "gloo", "all_reduce", "allreduce", "all_gather", "allgather", "wait_tensor")


def all_reduce_bandwidth(device: str, megabytes: int | None = None, repeats: int = 5) -> dict[str, Any]:
    """Median algorithm and bus bandwidth (GB/s) of an all_reduce over all ranks."""
    import torch
    import torch.distributed as dist

    from infercomp.measure.timing import synchronize

    size = (megabytes or (256 if device.startswith("cuda") else 32)) * 1024 * 1024
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    buf = torch.ones(size // torch.tensor([], dtype=dtype).element_size(), dtype=dtype, device=device)
    dist.all_reduce(buf)  # warm-up: connection setup and NCCL's first-use allocations
    times = []
    for _ in range(repeats):
        dist.barrier()
        synchronize(device)
        start = time.perf_counter()
        dist.all_reduce(buf)
        synchronize(device)
        times.append(time.perf_counter() - start)
    del buf
    n = dist.get_world_size()
    seconds = statistics.median(times)
    algbw = size / seconds / 1e9
    return {
        "bytes": size,
        "dtype": str(dtype).removeprefix("torch."),
        "seconds": seconds,
        "algbw_gbs": algbw,
        "busbw_gbs": algbw * 2 * (n - 1) / n,
        "repeats": repeats,
    }


def collective_time(call, device: str) -> dict[str, Any]:
    """Run `call()` once under the profiler; return the seconds spent in collectives and the
    call's wall time (both on this rank)."""
    from torch.profiler import ProfilerActivity, profile

    from infercomp.measure.timing import synchronize

    on_gpu = device.startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    thread = threading.get_native_id()
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        call()
        synchronize(device)
        wall = time.perf_counter() - start
    events = prof.events()
    if on_gpu:
        kernels = [e for e in events if _is_device_event(e)]
        if not kernels:  # no CUPTI: a zero here would be a guess, not a measurement
            return {"unavailable": "the profiler recorded no GPU kernels (CUPTI unavailable?)"}
        picked = [e for e in kernels if "nccl" in e.name.lower()]
        where = "NCCL kernels on the GPU"
    else:
        main = _model_thread(events, thread)
        picked = [e for e in events if e.thread == main and any(m in e.name.lower() for m in CPU_COLLECTIVE_MARKERS)]
        where = "collective ops (c10d/gloo) on the model's thread"
    seconds = _union_seconds([(e.time_range.start, e.time_range.end) for e in picked])
    return {
        "collective_s": seconds,
        "profiled_call_s": wall,
        "share_of_profiled_call": seconds / wall if wall > 0 else None,
        "collective_events": len(picked),
        "measured_as": f"torch.profiler, one untimed call: union of the intervals of {where}",
    }


def _is_device_event(event) -> bool:
    from torch.autograd import DeviceType

    return event.device_type == DeviceType.CUDA


def _model_thread(events, native_id: int) -> int:
    """The profiler's id of the thread that ran the model: the one with the most aten ops."""
    counts: dict[int, int] = {}
    for e in events:
        if e.name.startswith("aten::"):
            counts[e.thread] = counts.get(e.thread, 0) + 1
    return max(counts, key=counts.get) if counts else native_id


def _union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end] intervals in microseconds, as seconds (nested or
    overlapping events count once)."""
    total, end_so_far = 0.0, None
    for start, end in sorted(intervals):
        if end_so_far is None or start > end_so_far:
            total += end - start
            end_so_far = end
        elif end > end_so_far:
            total += end - end_so_far
            end_so_far = end
    return total / 1e6


def gather(value: Any) -> list[Any]:
    """Every rank's `value`, in rank order (a collective: every rank must call it)."""
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def rank_figures(result, device: str) -> dict[str, Any]:
    """This rank's memory and roofline for one method (weights and KV cache are this rank's shards)."""
    import torch.distributed as dist

    record: dict[str, Any] = {"rank": dist.get_rank(), "device": device, "status": result.status}
    summary = result.summary
    if summary is None:
        return record
    memory = summary.memory
    record.update(
        gpu_allocated_peak_gb=memory.gpu_allocated_peak_gb,
        gpu_reserved_peak_gb=memory.gpu_reserved_peak_gb,
        nvml_used_peak_gb=memory.nvml_used_peak_gb,
        cpu_rss_peak_gb=memory.cpu_rss_peak_gb,
        weights_gb=memory.weights_gb,
        kv_cache_gb=memory.kv_cache_gb,
        step_time_s=summary.inter_token_latency_s,
        tokens_per_second=summary.tokens_per_second,
        roofline=summary.roofline.model_dump() if summary.roofline else None,
    )
    return record
