"""The batch-32 step's matrix products alone: how fast cuBLAS reads each Qwen3-4B weight at a few
row counts and formulations, to see which would read nearer the copy bandwidth.

Usage (GPU): python benchmarks/gemm_bench.py --out DIR
Per (projection, formulation): as many copies of the weight as make 400 MB (so each product reads
its weight from memory, not from L2), one product per copy captured as a CUDA graph, replayed
after a warm-up; CUDA events over REPEATS replays give microseconds per product (all samples in
DIR/gemm_bench.jsonl) and the weight bytes per second they imply. Formulations: F.linear at 32,
48 and 64 rows (whether padding the rows would steer cuBLAS to better tiles), the weight times the
rows' transpose, and float32 parts over 2 and 4 slices of the inner dimension (one batched call,
fast.products.partial_products).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from gemv_splits import graph_us  # noqa: E402

from infercomp.fast.products import partial_products  # noqa: E402

SHAPES = {"qkv": (6144, 2560), "o": (2560, 4096), "gate_up": (19456, 2560), "down": (2560, 9728)}  # (out, in)
BYTES = 400e6
REPEATS = 10


def formulations():
    yield "linear-32", 32, lambda x, w: F.linear(x, w)
    yield "linear-48", 48, lambda x, w: F.linear(x, w)
    yield "linear-64", 64, lambda x, w: F.linear(x, w)
    yield "weight-by-rows-32", 32, lambda x, w: w @ x.T
    yield "parts-2-32", 32, lambda x, w: partial_products(x, w, 2)
    yield "parts-4-32", 32, lambda x, w: partial_products(x, w, 4)


def time_products(fn, xs, weights) -> list[float]:
    """Microseconds per product over REPEATS replays of one graph of len(weights) products."""
    calls = [functools.partial(fn, x, w) for x, w in zip(xs, weights, strict=True)]
    for _ in range(2):
        for call in calls:
            call()
    return graph_us(calls, REPEATS)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    lines, records = [], []
    for name, (n, k) in SHAPES.items():
        copies = max(2, int(BYTES // (n * k * 2)))
        weights = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02 for _ in range(copies)]
        for label, rows, fn in formulations():
            xs = [torch.randn(rows, k, device="cuda", dtype=torch.bfloat16) for _ in range(copies)]
            samples = time_products(fn, xs, weights)
            med = statistics.median(samples)
            records.append(dict(projection=name, formulation=label, rows=rows, copies=copies, us=samples))
            lines.append(
                f"{name:8} {label:18} {med:7.2f} us (range {min(samples):.2f}-{max(samples):.2f}), "
                f"{n * k * 2 / med / 1e3:5.0f} GB/s"
            )
            print(lines[-1], flush=True)
        del weights
        torch.cuda.empty_cache()
    (out / "gemm_bench.txt").write_text("\n".join(lines) + "\n")
    (out / "gemm_bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


if __name__ == "__main__":
    main()
