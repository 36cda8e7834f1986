"""Print the key figures of every results.json under a folder, one row per method, as Markdown.

Usage: python benchmarks/summarize.py DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

from infercomp.results import Results


def fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def main() -> None:
    root = Path(sys.argv[1])
    print(
        "| run | method | batch | tok/s (median) | cv % | TTFT ms | ITL ms | peak alloc GB | roofline | J/token "
        "| acceptance | measured speedup |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for path in sorted(root.glob("*/results.json")):
        res = Results.load(path)
        for name, m in res.methods.items():
            s = m.summary
            if s is None:
                print(f"| {path.parent.name} | {name} | | {m.status}: {m.reason} |")
                continue
            spec = m.speculative
            print(
                f"| {path.parent.name} | {name} | {res.config['batch_size']} | {s.tokens_per_second:.1f} | "
                f"{fmt(s.tokens_per_second_stats.cv and s.tokens_per_second_stats.cv * 100, '.1f')} | "
                f"{fmt(s.ttft_s and s.ttft_s * 1000, '.1f')} | "
                f"{fmt(s.inter_token_latency_s and s.inter_token_latency_s * 1000, '.2f')} | "
                f"{fmt(s.memory.gpu_allocated_peak_gb if s.memory else None, '.2f')} | "
                f"{fmt(s.roofline.share if s.roofline else None, '.1%')} | "
                f"{fmt(s.energy.joules_per_token if s.energy else None, '.3f')} | "
                f"{fmt(spec.acceptance_rate if spec else None, '.2f')} | "
                f"{fmt(spec.measured_speedup if spec else None, '.2f')} |"
            )


if __name__ == "__main__":
    main()
