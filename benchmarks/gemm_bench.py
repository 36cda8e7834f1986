"""The batch-32 step's matrix products alone: how fast cuBLAS and infercomp's few-row kernels read
each Qwen3-4B weight in a few formulations, to see which would read nearer the copy bandwidth.

Usage (GPU): python benchmarks/gemm_bench.py --out DIR
Per (projection, formulation): as many copies of the weight as make 400 MB (so each product reads
its weight from memory, not from L2), one product per copy captured as a CUDA graph, replayed
after a warm-up; CUDA events over REPEATS replays give microseconds per product (all samples in
DIR/gemm_bench.jsonl) and the weight bytes per second they imply. Formulations: F.linear at 32,
48 and 64 rows (whether padding the rows would steer cuBLAS to better tiles), float32 parts over
2 and 4 slices of the inner dimension (one batched call, fast.products.partial_products), and
infercomp's own Triton products (fast/rows_kernel.py) over a grid of block sizes, pipelining
stages and column splits (TRITON below), with gate|up also as one kernel with its activation
(GATED); each checked against float32 before it is timed.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from gemv_splits import graph_us, write_results  # noqa: E402

from infercomp.fast import rows_kernel  # noqa: E402
from infercomp.fast.products import partial_products  # noqa: E402

SHAPES = {"qkv": (6144, 2560), "o": (2560, 4096), "gate_up": (19456, 2560), "down": (2560, 9728)}  # (out, in)
BYTES = 400e6
REPEATS = 10


# Column splits tried per projection: enough programs for 132 SMs at 64-row blocks (o and down
# have 2,560 rows: 40 blocks), and no more parts than the float32 sums can afford.
SPLITS = {"qkv": (1, 2, 4), "o": (2, 4, 8), "gate_up": (1, 2), "down": (2, 4, 8)}
# The engine's candidates (fast/rows_kernel.py ROWS_CONFIGS). 128-row blocks with 8 warps, which
# reread the input rows from L2 half as often, were slower on every projection here and in the
# step (docs/measurements/2026-11-28-h100-wide) and were removed.
TRITON = [dict(BLOCK_N=64, BLOCK_K=128, num_warps=4, num_stages=st) for st in (3, 4, 5)]


def triton_formulations(name: str):
    for split in SPLITS[name]:
        for c in TRITON:
            config = dict(c, SPLIT=split)
            label = f"triton-n{c['BLOCK_N']}-k{c['BLOCK_K']}-w{c['num_warps']}-s{c['num_stages']}-p{split}"
            yield label, 32, lambda x, w, config=config: rows_kernel.launch(x, w, config)


GATED = [(32, 128, 3), (32, 128, 4), (32, 128, 5), (64, 128, 3)]  # BLOCK_N (a half), BLOCK_K, stages


def gated_formulations(name: str):
    """gate|up's product and silu(gate) * up in one kernel (the others time the product alone)."""
    for bn, bk, st in GATED if name == "gate_up" else ():
        config = dict(BLOCK_N=bn, BLOCK_K=bk, num_warps=4, num_stages=st)
        yield f"gated-n{bn}-k{bk}-s{st}", 32, lambda x, w, config=config: rows_kernel.gated_launch(x, w, config)


def formulations(name: str):
    yield "linear-32", 32, lambda x, w: F.linear(x, w)
    yield "linear-48", 48, lambda x, w: F.linear(x, w)
    yield "linear-64", 64, lambda x, w: F.linear(x, w)
    yield "parts-2-32", 32, lambda x, w: partial_products(x, w, 2)
    yield "parts-4-32", 32, lambda x, w: partial_products(x, w, 4)
    yield from triton_formulations(name)
    yield from gated_formulations(name)


def check(fn, x, w, gated: bool) -> float:
    """The largest difference from the float32 result, over its largest value."""
    got = fn(x, w).float()
    got = got.sum(0) if got.dim() == 3 else got
    want = F.linear(x.float(), w.float())
    if gated:
        gate, up = want.chunk(2, dim=-1)
        want = F.silu(gate) * up
    return ((got - want).abs().max() / want.abs().max()).item()


def time_products(fn, xs, weights) -> list[float]:
    """Microseconds per product over REPEATS replays of one graph of len(weights) products."""
    calls = [functools.partial(fn, x, w) for x, w in zip(xs, weights, strict=True)]
    for _ in range(2):
        for call in calls:
            call()
    return graph_us(calls, REPEATS)


def best_of(records: list[dict]) -> list[str]:
    """Per projection: the fastest cuBLAS and the fastest Triton formulation, by median."""
    out = []
    for name in SHAPES:
        mine = [r for r in records if r["projection"] == name]
        med = lambda r: statistics.median(r["us"])  # noqa: E731
        cublas = min((r for r in mine if not r["formulation"].startswith(("triton", "gated"))), key=med, default=None)
        triton = min((r for r in mine if r["formulation"].startswith(("triton", "gated"))), key=med, default=None)
        if cublas and triton:
            out.append(
                f"best {name:8} cuBLAS {cublas['formulation']} {med(cublas):.2f} us, "
                f"Triton {triton['formulation']} {med(triton):.2f} us"
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    lines, records = [], []

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    for name, (n, k) in SHAPES.items():
        copies = max(2, int(BYTES // (n * k * 2)))
        weights = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02 for _ in range(copies)]
        for label, rows, fn in formulations(name):
            xs = [torch.randn(rows, k, device="cuda", dtype=torch.bfloat16) for _ in range(copies)]
            try:
                error = check(fn, xs[0], weights[0], label.startswith("gated"))
            except Exception as e:  # e.g. a config whose stages outgrow shared memory
                say(f"{name:8} {label:18} FAILED: {type(e).__name__}: {str(e)[:120]}")
                continue
            if error > 0.02:  # bf16 rounding of the output is 2^-8 of its magnitude
                say(f"{name:8} {label:18} WRONG: relative error {error:.3g}")
                continue
            samples = time_products(fn, xs, weights)
            med = statistics.median(samples)
            records.append(dict(projection=name, formulation=label, rows=rows, copies=copies, us=samples, error=error))
            say(
                f"{name:8} {label:28} {med:7.2f} us (range {min(samples):.2f}-{max(samples):.2f}), "
                f"{n * k * 2 / med / 1e3:5.0f} GB/s"
            )
        del weights
        torch.cuda.empty_cache()
    lines += best_of(records)
    print("\n".join(lines[-len(SHAPES) :]), flush=True)
    write_results(out, "gemm_bench", lines, records)


if __name__ == "__main__":
    main()
