"""The one-row bf16 kernel (fast/gemv_kernel.py) over a grid of block sizes and column splits, per
layer shape of Qwen3-4B and Qwen3-0.6B, with the weights streamed from memory as in a decode step.

    python benchmarks/gemv_splits.py [--out FILE.jsonl] [--models 4b,0.6b] [--chain LAYERS]

Each projection takes its decode-step prologue and residual. A weight is one of several copies
(together at least 256 MB, five times the H100's 50 MB L2), called in turn, so each call reads
its bytes from memory as a layer's weights are in a step (a single weight called repeatedly
would sit in L2). Per (shape, candidate): the calls captured in one CUDA graph, replayed 5 times,
timed by CUDA events; us per call, best replay, all replays kept in FILE. Also per shape: the
autotuned choice (what the engine uses) and cuBLAS on the already-activated row.
--chain LAYERS: instead, a step's four products per layer in a row over LAYERS layers, with and
without programmatic dependent launch (chain()).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import itertools
import json
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from infercomp.fast import gemv, gemv_kernel  # noqa: E402

# (model, name, rows N, columns K, prologue, residual)
SHAPES = [
    ("4b", "qkv", 6144, 2560, gemv.RMSNORM, False),
    ("4b", "o", 2560, 4096, gemv.NONE, True),
    ("4b", "gate_up", 19456, 2560, gemv.RMSNORM, False),
    ("4b", "down", 2560, 9728, gemv.SILU, True),
    ("0.6b", "qkv", 4096, 1024, gemv.RMSNORM, False),
    ("0.6b", "o", 1024, 2048, gemv.NONE, True),
    ("0.6b", "gate_up", 6144, 1024, gemv.RMSNORM, False),
    ("0.6b", "down", 1024, 3072, gemv.SILU, True),
    # almost no bytes (1.6 MB a layer): the chain of these measures what a kernel costs beyond its reads
    ("tiny", "qkv", 256, 1024, gemv.RMSNORM, False),
    ("tiny", "o", 1024, 128, gemv.NONE, True),
    ("tiny", "gate_up", 256, 1024, gemv.RMSNORM, False),
    ("tiny", "down", 1024, 128, gemv.SILU, True),
]
GRID = {
    "SPLIT": (1, 2, 4, 8),
    "BLOCK_N": (2, 4, 8, 16),
    "BLOCK_K": (256, 512),
    "num_warps": (4, 8),
    "num_stages": (2, 4),
}
STREAMED_BYTES, REPLAYS = 256 << 20, 5


def candidates(n: int):
    for values in itertools.product(*GRID.values()):
        c = dict(zip(GRID, values, strict=True))
        if c["SPLIT"] == 1 or triton_cdiv(n, c["BLOCK_N"]) <= gemv_kernel.COUNTS:
            yield c


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)


def time_us(calls) -> list[float]:
    """Microseconds per call, one sample per replay of a graph holding all `calls`."""
    for fn in calls[:2]:
        fn()
    return graph_us(calls, REPLAYS)


def write_results(out, stem: str, lines: list[str], records: list[dict]) -> None:
    """A kernel benchmark's readable lines in out/STEM.txt and its raw samples in out/STEM.jsonl."""
    (out / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    (out / f"{stem}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def graph_us(calls, replays: int) -> list[float]:
    """The calls (compiled and warmed up already) captured in one CUDA graph, replayed once
    untimed (the first launch of a graph uploads it), then `replays` times: microseconds per
    call, one sample per replay, by CUDA events."""
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for fn in calls:
            fn()
    graph.replay()
    torch.cuda.synchronize()
    samples = []
    for _ in range(replays):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) * 1000 / len(calls))
    del graph
    return samples


def compile_all(x, norm, weight, res, prologue, cands) -> None:
    """Compile every candidate before timing, 16 at a time (the slow part runs outside Python)."""
    n, k = weight.shape
    part = torch.empty(gemv_kernel.MAX_SPLIT * n, dtype=torch.float32, device="cuda")
    args = (x, x if norm is None else norm, weight, res if res is not None else part, part, part,
            gemv_kernel.counts(x.device), n, k, 1e-6)  # fmt: skip

    def one(c):
        meta = {key: c[key] for key in ("BLOCK_N", "BLOCK_K", "SPLIT")}
        gemv_kernel.gemv_body.warmup(*args, grid=(1,), PROLOGUE=prologue, RESIDUAL=res is not None, **meta,
                                     num_warps=c["num_warps"], num_stages=c["num_stages"])  # fmt: skip

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(one, cands))


def sweep_shape(model, name, n, k, prologue, residual, out) -> None:
    """Every candidate, the autotuned choice and cuBLAS for one projection; prints the best."""
    dt = torch.bfloat16
    copies = max(2, triton_cdiv(STREAMED_BYTES, n * k * 2))
    ws = [torch.randn(n, k, device="cuda", dtype=dt) / 16 for _ in range(copies)]
    x = torch.randn(2 * k if prologue == gemv.SILU else k, device="cuda", dtype=dt)
    norm = torch.rand(k, device="cuda", dtype=dt) if prologue == gemv.RMSNORM else None
    res = torch.randn(n, device="cuda", dtype=dt) if residual else None
    cands = list(candidates(n))
    compile_all(x, norm, ws[0], res, prologue, cands)
    rows = []

    def record(label, samples, extra):
        best = min(samples)
        row = dict(model=model, shape=name, N=n, K=k, kernel=label, us=best, TBps=n * k * 2 / best / 1e6,
                   samples_us=samples, copies=copies, **extra)  # fmt: skip
        rows.append(row)
        if out:
            out.write(json.dumps(row) + "\n")
            out.flush()

    def product(w, config=None):
        return functools.partial(gemv_kernel.launch, x, w, norm, res, 1e-6, prologue, config)

    for c in cands:
        record("candidate", time_us([product(w, c) for w in ws]), {"config": c})
    record("autotuned", time_us([product(w) for w in ws]), {"config": str(gemv_kernel.gemv_kernel.best_config)})
    act = torch.randn(k, device="cuda", dtype=dt)
    record("cublas (activated row)", time_us([functools.partial(F.linear, act, w) for w in ws]), {})
    plain = sorted((r for r in rows if r["kernel"] == "candidate"), key=lambda r: r["us"])
    unsplit = [r for r in plain if r["config"]["SPLIT"] == 1]
    print(f"{model} {name} {n}x{k} ({copies} copies):")
    for r in plain[:5]:
        print(f"  {r['us']:7.2f} us {r['TBps']:5.2f} TB/s  {r['config']}")
    print(f"  best unsplit: {unsplit[0]['us']:7.2f} us {unsplit[0]['TBps']:5.2f} TB/s  {unsplit[0]['config']}")
    for r in rows:
        if r["kernel"] != "candidate":
            print(f"  {r['kernel']}: {r['us']:7.2f} us {r['TBps']:5.2f} TB/s {r.get('config', '')}")


def chain(model: str, layers: int, out) -> None:
    """A decode step's four products per layer in a row, each feeding the next (q|k|v's first
    columns stand in for attention's output), over `layers` layers of distinct weights: us per
    layer with programmatic dependent launch (PDL) on and off, autotuned blocks, CUDA events."""
    dt = torch.bfloat16
    shapes = [s for s in SHAPES if s[0] == model]  # qkv, o, gate_up, down
    hidden = shapes[0][3]
    weights = [[torch.randn(n, k, device="cuda", dtype=dt) / 16 for _, _, n, k, _, _ in shapes] for _ in range(layers)]
    norm = torch.rand(hidden, device="cuda", dtype=dt)
    h0 = torch.randn(hidden, device="cuda", dtype=dt)
    nbytes = sum(w.nbytes for w in weights[0])

    def step():
        h = h0
        for qkv, o, gate_up, down in weights:
            q = gemv_kernel.launch(h, qkv, norm, None, 1e-6, gemv.RMSNORM)
            h = gemv_kernel.launch(q[: o.shape[1]], o, None, h, 1e-6, gemv.NONE)
            gu = gemv_kernel.launch(h, gate_up, norm, None, 1e-6, gemv.RMSNORM)
            h = gemv_kernel.launch(gu, down, None, h, 1e-6, gemv.SILU)
        return h

    for setting in ("1", "0"):
        os.environ["INFERCOMP_PDL"] = setting
        samples = [us / layers for us in time_us([step])]  # time_us: per call; one call = all layers
        best = min(samples)
        label = "PDL on" if setting == "1" else "PDL off"
        row = dict(model=model, kernel="layer chain", pdl=setting == "1", layers=layers, us_per_layer=best,
                   TBps=nbytes / best / 1e6, samples_us_per_layer=samples)  # fmt: skip
        print(f"{model} layer chain, {label}: {best:.2f} us/layer "
              f"({nbytes / 1e6:.1f} MB, {nbytes / best / 1e6:.2f} TB/s)")  # fmt: skip
        if out:
            out.write(json.dumps(row) + "\n")
            out.flush()
    os.environ.pop("INFERCOMP_PDL")
    with_pdl, without = (step_out(step, s) for s in ("1", "0"))
    print(f"  the same output with and without PDL: {torch.equal(with_pdl, without)}")


def step_out(step, setting: str) -> torch.Tensor:
    os.environ["INFERCOMP_PDL"] = setting
    try:
        return step().clone()
    finally:
        os.environ.pop("INFERCOMP_PDL")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--models", default="4b,0.6b")
    ap.add_argument("--chain", type=int, default=0, help="layers: time the layer chain instead of the sweep")
    args = ap.parse_args()
    assert gemv.prepare(torch.device("cuda")), "needs CUDA and Triton"
    models = args.models.split(",")
    torch.manual_seed(0)
    out = open(args.out, "a") if args.out else None
    if args.chain:
        for model in models:
            chain(model, args.chain, out)
        return
    for model, name, n, k, prologue, residual in SHAPES:
        if model in models:
            sweep_shape(model, name, n, k, prologue, residual, out)
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
