"""One-row products of Qwen3-4B's layer shapes, per weight format: microseconds per call and the
bandwidth at which each kernel reads its bytes (weights, scales), on one CUDA device.

    python benchmarks/packed_kernels.py [--out FILE.jsonl]

Formats: bf16 (fast.gemv's kernel), int8 and int4 (fast.packed's kernels), each with the
prologue and residual the decode step uses for that projection. Each (format, shape) is autotuned
and warmed up first, then 20 calls are captured in one CUDA graph and the graph replayed 10 times,
timed with CUDA events (launch overhead excluded, as in the captured decode step). Prints one line
per (format, shape) and appends one JSON object per line to FILE.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gemv_splits import graph_us  # noqa: E402

from infercomp.fast import gemv, packed  # noqa: E402

HIDDEN, Q, KV, INTER, VOCAB = 2560, 4096, 2048, 9728, 151936
# (name, rows N, columns K, prologue, residual)
SHAPES = [
    ("qkv", Q + KV, HIDDEN, gemv.RMSNORM, False),
    ("o", HIDDEN, Q, gemv.NONE, True),
    ("gate_up", 2 * INTER, HIDDEN, gemv.RMSNORM, False),
    ("down", HIDDEN, INTER, gemv.SILU, True),
    ("head", VOCAB, HIDDEN, gemv.NONE, False),
]
CALLS, REPLAYS = 20, 10


def time_us(fn) -> list[float]:
    """Microseconds per call, one sample per graph replay (CALLS calls of fn in one graph)."""
    for _ in range(3):
        fn()  # autotunes and compiles before capture
    return graph_us([fn] * CALLS, REPLAYS)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    args = ap.parse_args()
    assert gemv.prepare(torch.device("cuda")), "needs CUDA and Triton"
    dt = torch.bfloat16
    torch.manual_seed(0)
    for fmt in ("bf16", "int8", "int4"):
        for name, n, k, prologue, residual in SHAPES:
            if name == "head" and fmt == "int4":
                continue  # the integer kinds keep an int8 token table
            w = torch.randn(n, k, device="cuda", dtype=dt) / 16
            weight = w if fmt == "bf16" else packed.pack(w, 8 if fmt == "int8" else 4)
            nbytes = weight.nbytes if fmt == "bf16" else weight.nbytes()
            x = torch.randn(1, 1, 2 * k if prologue == gemv.SILU else k, device="cuda", dtype=dt)
            norm = torch.rand(k, device="cuda", dtype=dt) if prologue == gemv.RMSNORM else None
            res = torch.randn(1, 1, n, device="cuda", dtype=dt) if residual else None
            samples = time_us(functools.partial(gemv.product, x, weight, norm, res, 1e-6, prologue))
            del w, weight
            best = min(samples)
            record = {
                "format": fmt,
                "shape": name,
                "n": n,
                "k": k,
                "bytes": nbytes,
                "us_best": round(best, 2),
                "us_samples": [round(s, 2) for s in samples],
                "tb_per_s": round(nbytes / best / 1e6, 3),
            }
            print(f"{fmt:5s} {name:8s} {n:7d} x {k:5d}  {best:8.2f} us  {record['tb_per_s']:.2f} TB/s", flush=True)
            if args.out:
                with open(args.out, "a") as fh:
                    fh.write(json.dumps(record) + "\n")
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
