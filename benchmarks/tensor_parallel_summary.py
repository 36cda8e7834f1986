"""Summary of tensor-parallel benchmark runs: one row per run and method, then each sharded run
against the single-GPU run of the same model. Per-GPU memory is each rank's peak allocated.

Usage: python benchmarks/tensor_parallel_summary.py DIR   (the folders of gpu_tensor_parallel.sh)
"""

from __future__ import annotations

import sys
from pathlib import Path

from infercomp.results import Results


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def per_gpu(results: Results, method: str) -> tuple[str, str, str]:
    """(peak allocated GB per GPU, weights GB per GPU, collective share per rank) of one method."""
    tp = results.tensor_parallel
    if not tp:
        s = results.methods[method].summary
        return _fmt(s.memory.gpu_allocated_peak_gb, ".1f"), _fmt(s.memory.weights_gb, ".1f"), "-"
    entry = tp["methods"].get(method, {})
    ranks = entry.get("ranks", [])
    peaks = " / ".join(_fmt(r.get("gpu_allocated_peak_gb"), ".1f") for r in ranks)
    weights = " / ".join(_fmt(r.get("weights_gb"), ".1f") for r in ranks)
    shares = " / ".join(_fmt((c or {}).get("share_of_profiled_call"), ".0%") for c in entry.get("collectives", []))
    return peaks, weights, shares


def main() -> None:
    root = Path(sys.argv[1])
    runs = {p.parent.name: Results.load(p) for p in sorted(root.glob("*/results.json"))}
    print(
        "| run | GPUs | method | ms/step | tok/s | peak GB per GPU | weights GB per GPU | collectives | "
        "all-reduce busbw GB/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, res in runs.items():
        size = res.config.get("tensor_parallel_size", 1)
        busbw = res.tensor_parallel["all_reduce"]["busbw_gbs"] if res.tensor_parallel else None
        for method, m in res.methods.items():
            if m.summary is None:
                print(f"| {name} | {size} | {method} | {m.status}: {m.reason} | | | | | |")
                continue
            peaks, weights, shares = per_gpu(res, method)
            s = m.summary
            step_ms = s.inter_token_latency_s and s.inter_token_latency_s * 1000
            print(
                f"| {name} | {size} | {method} | {_fmt(step_ms, '.1f')} "
                f"| {s.tokens_per_second:.1f} | {peaks} | {weights} | {shares} | {_fmt(busbw, '.0f')} |"
            )
    print()
    print("| sharded run | against | method | speedup (tok/s) | ms/step ratio (1 GPU / sharded) |")
    print("|---|---|---|---|---|")
    for name, res in runs.items():
        base_name = name.rsplit("-tp", 1)[0] + "-tp1"
        base = runs.get(base_name)
        if not res.tensor_parallel or base is None:
            continue
        for method, m in res.methods.items():
            b = base.methods.get(method)
            if m.summary is None or b is None or b.summary is None:
                continue
            ratio = (b.summary.inter_token_latency_s or 0) / (m.summary.inter_token_latency_s or 1)
            speed = m.summary.tokens_per_second / b.summary.tokens_per_second
            print(f"| {name} | {base_name} | {method} | {speed:.2f}x | {ratio:.2f}x |")
    for skipped in sorted(root.glob("skipped.txt")):
        print()
        print(skipped.read_text().strip())
    missing = [p.stem for p in root.glob("*.log") if p.stem not in runs]
    for name in missing:
        print(f"\n{name}: no results.json (see {name}.log)")


if __name__ == "__main__":
    main()
