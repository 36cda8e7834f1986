"""The few-rows kernel (fast/rows_kernel.py) over its candidate block sizes and column splits, per
layer shape of Qwen3-4B, at 32 rows (a batch-32 decode step) and 5 rows (a k = 4 verify block),
with the weights streamed from memory as in a decode step; beside it, cuBLAS on the
already-normalised rows (what the plain path runs, without its norm and residual kernels).

    python benchmarks/rows_configs.py [--out FILE.jsonl] [--rows 32,5]

Per (shape, candidate): the calls over several weight copies (together at least 256 MB) captured
in one CUDA graph, replayed 5 times, timed by CUDA events; us per call, best replay, all replays
kept in FILE.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gemv_splits import SHAPES, STREAMED_BYTES, time_us, triton_cdiv  # noqa: E402

from infercomp.fast import gemv, rows  # noqa: E402


def candidates(kernel_module, n: int) -> list[dict]:
    named = {"N": n}
    kept = kernel_module.prune(kernel_module.configs, named)
    return [dict(c.kwargs, num_warps=c.num_warps, num_stages=c.num_stages) for c in kept]


def sweep_shape(rk, name, m, n, k, prologue, residual, out) -> None:
    dt = torch.bfloat16
    copies = max(2, triton_cdiv(STREAMED_BYTES, n * k * 2))
    ws = [torch.randn(n, k, device="cuda", dtype=dt) / 16 for _ in range(copies)]
    x = torch.randn(m, 2 * k if prologue == gemv.SILU else k, device="cuda", dtype=dt)
    norm = torch.rand(k, device="cuda", dtype=dt) if prologue == gemv.RMSNORM else None
    res = torch.randn(m, n, device="cuda", dtype=dt) if residual else None
    cands = candidates(rk, n)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:  # compile before timing
        list(pool.map(lambda c: rk.launch(x, ws[0], norm, res, 1e-6, prologue, c), cands))
    torch.cuda.synchronize()
    results = []

    def record(label, samples, config):
        best = min(samples)
        row = dict(model="4b", shape=name, M=m, N=n, K=k, kernel=label, us=best, TBps=n * k * 2 / best / 1e6,
                   samples_us=samples, copies=copies, config=config)  # fmt: skip
        results.append(row)
        if out:
            out.write(json.dumps(row) + "\n")
            out.flush()

    def product(w, config=None):
        return functools.partial(rk.launch, x, w, norm, res, 1e-6, prologue, config)

    for c in cands:
        record("candidate", time_us([product(w, c) for w in ws]), c)
    record("autotuned", time_us([product(w) for w in ws]), str(rk.rows_kernel.best_config))
    act = torch.randn(m, k, device="cuda", dtype=dt)
    record("cublas (normalised rows)", time_us([functools.partial(F.linear, act, w) for w in ws]), "")
    ranked = sorted((r for r in results if r["kernel"] == "candidate"), key=lambda r: r["us"])
    print(f"4b {name} M={m} {n}x{k} ({copies} copies):")
    for r in ranked[:4]:
        print(f"  {r['us']:7.2f} us {r['TBps']:5.2f} TB/s  {r['config']}")
    for r in results:
        if r["kernel"] != "candidate":
            print(f"  {r['kernel']}: {r['us']:7.2f} us {r['TBps']:5.2f} TB/s {r['config']}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--rows", default="32,5")
    args = ap.parse_args()
    assert rows.prepare(torch.device("cuda")), "needs CUDA and Triton"
    from infercomp.fast import rows_kernel

    torch.manual_seed(0)
    out = open(args.out, "a") if args.out else None
    for m in (int(r) for r in args.rows.split(",")):
        for model, name, n, k, prologue, residual in SHAPES:
            if model == "4b":
                sweep_shape(rows_kernel, name, m, n, k, prologue, residual, out)
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
