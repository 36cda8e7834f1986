"""The decode step's attention kernel alone (fast/attend_kernel.py's fresh_kernel), at Qwen3-4B's
shapes, for its launch settings: slots a loop step, warps, pipelining stages.

Usage (GPU): python benchmarks/attend_bench.py --out DIR [--rows 1,32] [--lengths 96,160] [--ncu]
Per (rows, cached length, setting): 36 launches (one per layer, each over its own cache, so the
keys and values come from memory as in a step, not from L2) captured as one CUDA graph, replayed
after a warm-up; CUDA events over REPEATS replays give microseconds per launch (all samples kept
in DIR/attend_bench.jsonl) and the bandwidth the cached keys and values imply. --ncu launches
the default setting once at 32 rows and 160 slots, for Nsight Compute to profile, and exits.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402
from gemv_splits import graph_us, write_results  # noqa: E402

from infercomp.fast import attend_kernel as ak  # noqa: E402

HEADS, KV_HEADS, HD, LAYERS = 32, 8, 128, 36  # Qwen3-4B
SLOTS = 192  # cache capacity (prompt 32 + 128 new tokens, rounded up)
REPEATS = 20


def inputs(rows: int, length: int):
    dev, dt = "cuda", torch.bfloat16
    qkv = torch.randn(rows, (HEADS + 2 * KV_HEADS) * HD, device=dev, dtype=dt)
    cos, sin = torch.randn(rows, HD, device=dev, dtype=dt), torch.randn(rows, HD, device=dev, dtype=dt)
    norm = torch.ones(HD, device=dev, dtype=dt)
    shape = (rows, KV_HEADS, SLOTS, HD)
    new = lambda: torch.randn(shape, device=dev, dtype=dt)  # noqa: E731
    caches = [(new(), new()) for _ in range(LAYERS)]
    pos = torch.full((rows,), length - 1, device=dev, dtype=torch.long)
    return qkv, cos, sin, norm, caches, pos


def run_layers(args) -> None:
    qkv, cos, sin, norm, caches, pos = args
    for k, v in caches:
        ak.launch_fresh(qkv, cos, sin, norm, norm, 1e-6, k, v, pos, HEADS, pdl=False)


def time_setting(args) -> list[float]:
    """Microseconds per launch, one sample per replay of the 36-launch graph."""
    for _ in range(2):
        run_layers(args)  # compile and warm
    return [us / LAYERS for us in graph_us([lambda: run_layers(args)], REPEATS)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="")
    ap.add_argument("--rows", default="1,32")
    ap.add_argument("--lengths", default="96,160")
    ap.add_argument("--ncu", action="store_true")
    a = ap.parse_args()
    if a.ncu:
        run_layers(inputs(32, 160))
        torch.cuda.synchronize()
        return
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    lines, records = [], []
    for rows, length in itertools.product(map(int, a.rows.split(",")), map(int, a.lengths.split(","))):
        args = inputs(rows, length)
        read = rows * KV_HEADS * length * HD * 2 * 2  # keys and values, bf16
        for slots, warps, stages in itertools.product((32, 64, 128), (2, 4, 8), (None, 1, 2, 4)):
            ak.BLOCK_S = ak.MANY_PROGRAMS_SLOTS = slots
            ak.WARPS = ak.MANY_PROGRAMS_WARPS = warps
            ak.STAGES = stages
            try:
                samples = time_setting(args)
            except Exception as e:  # a setting that does not fit (shared memory) is reported, not fatal
                lines.append(f"rows {rows} length {length} slots {slots} warps {warps} stages {stages}: {e!r:.200}")
                continue
            med = statistics.median(samples)
            records.append(dict(rows=rows, length=length, slots=slots, warps=warps, stages=stages, us=samples))
            lines.append(
                f"rows {rows:2d} length {length:3d} slots {slots:3d} warps {warps} stages {stages!s:4}: "
                f"median {med:6.2f} us (range {min(samples):.2f}-{max(samples):.2f}), {read / med / 1e3:6.0f} GB/s"
            )
            print(lines[-1], flush=True)
        del args
        torch.cuda.empty_cache()
    write_results(out, "attend_bench", lines, records)


if __name__ == "__main__":
    main()
