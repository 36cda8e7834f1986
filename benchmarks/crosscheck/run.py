"""infercomp against optimum-benchmark on the same model folder, interleaved.

Both run stock `generate()` on the same local model (the embedded main by default) on CPU, with
the same batch, the same prompt length and the same forced number of new tokens, in one process
with the same torch threads. Rounds alternate the two tools (optimum-benchmark, infercomp,
infercomp, optimum-benchmark, ...) so load from elsewhere hits both alike. Printed: each tool's
median decode tokens/s and per-token latency, and their ratios.

Definitions, matched to optimum-benchmark 0.6.0's:
  decode tokens/s = batch x (new - 1) / median decode time; optimum-benchmark's decode time is
  a generate call's latency minus the mean latency of a separate one-token generate (prefill),
  infercomp's comes from a per-step clock inside the same call (batch / inter-token latency).
  per-token latency = the median of optimum-benchmark's per-token tracker; infercomp's median
  inter-token latency (decode seconds per generated position).

Usage (repo root, with the `crosscheck` extra installed):
  python benchmarks/crosscheck/run.py [--batch 1 4] [--new 64] [--prompt-tokens 32] [--rounds 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch


def optimum_benchmark(model: str, batch: int, prompt_tokens: int, new: int, iterations: int) -> dict:
    import importlib

    from transformers import PreTrainedTokenizerBase, Trainer  # noqa: F401

    # optimum-benchmark 0.6.0 imports a name transformers 5 dropped (its open PR #338 adds this
    # alias). Set after importing Trainer, whose import replaces the lazy `transformers` module.
    importlib.import_module("transformers").SpecialTokensMixin = PreTrainedTokenizerBase
    from optimum_benchmark import Benchmark, BenchmarkConfig, InferenceConfig, InlineConfig, PyTorchConfig

    config = BenchmarkConfig(
        name="crosscheck",
        launcher=InlineConfig(device_isolation=False),
        scenario=InferenceConfig(
            latency=True,
            memory=False,
            iterations=iterations,
            duration=0,
            warmup_runs=1,
            input_shapes={"batch_size": batch, "sequence_length": prompt_tokens},
            generate_kwargs={"max_new_tokens": new, "min_new_tokens": new},
        ),
        backend=PyTorchConfig(
            model=model, device="cpu", task="text-generation", torch_dtype="float32", no_weights=False
        ),
    )
    report = Benchmark.launch(config).to_dict()
    # Medians (p50) of its raw latencies: infercomp reports medians, and under outside load the
    # latencies are right-skewed, so optimum-benchmark's own mean-based throughput runs lower.
    decode = report["decode"]
    return {
        "decode_tokens_per_s": batch * (new - 1) / decode["latency"]["p50"],
        "per_token_latency_s": report["per_token"]["latency"]["p50"],
        "decode_tokens_per_s_from_mean": decode["throughput"]["value"],
    }


def prompt_of(tokenizer, n: int) -> str:
    """A text the tokenizer turns into exactly n tokens."""
    text = " ".join(["the cat sat on the mat"] * n)
    ids = tokenizer(text)["input_ids"][:n]
    out = tokenizer.decode(ids)
    assert len(tokenizer(out)["input_ids"]) == n, "prompt length did not round-trip"
    return out


def infercomp_run(prompt: str, batch: int, new: int, repeats: int, out: Path) -> dict:
    from infercomp.config import load_config
    from infercomp.runner import run_experiment

    cfg = load_config(
        "example",
        embedded=True,
        overrides={
            "prompts": [prompt],
            "num_completions": batch,
            "batch_size": batch,
            "max_new_tokens": new,
            "fixed_length": True,
            "temperature": 0.0,
            "methods_to_test": ["standard" if batch == 1 else "batched"],
            "repeats": repeats,
            "warmup_runs": 1,
            "quality": False,
            "num_threads": torch.get_num_threads(),
        },
    )
    res = run_experiment(cfg, out)
    (m,) = res.methods.values()
    s = m.summary
    itl = s.inter_token_latency_s
    return {"decode_tokens_per_s": batch / itl, "per_token_latency_s": itl, "tokens_per_s": s.tokens_per_second}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a local model folder (default: the embedded main)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--new", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=5, help="timed generate calls per tool per round")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both tools")
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from infercomp.models import EMBEDDED

    torch.set_num_threads(args.threads)
    model = args.model or str(EMBEDDED["embedded:main"])
    prompt = prompt_of(AutoTokenizer.from_pretrained(model), args.prompt_tokens)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch in args.batch:
            ours, theirs = [], []
            for r in range(args.rounds):
                order = ("optimum", "infercomp") if r % 2 == 0 else ("infercomp", "optimum")
                for tool in order:
                    if tool == "optimum":
                        theirs.append(optimum_benchmark(model, batch, args.prompt_tokens, args.new, args.iterations))
                    else:
                        out = Path(tmp) / f"b{batch}r{r}"
                        ours.append(infercomp_run(prompt, batch, args.new, args.iterations, out))
            row = {"batch": batch, "prompt_tokens": args.prompt_tokens, "new_tokens": args.new}
            for key in ("decode_tokens_per_s", "per_token_latency_s"):
                a = statistics.median(x[key] for x in ours)
                b = statistics.median(x[key] for x in theirs)
                row[key] = {"infercomp": a, "optimum_benchmark": b, "ratio": a / b}
                row[key]["infercomp_rounds"] = [x[key] for x in ours]
                row[key]["optimum_benchmark_rounds"] = [x[key] for x in theirs]
                # Pairs of one round ran back to back: their ratio is what outside load moves least.
                pair_ratios = [x[key] / y[key] for x, y in zip(ours, theirs, strict=True)]
                row[key]["paired_ratio_median"] = statistics.median(pair_ratios)
                row[key]["paired_ratios"] = pair_ratios
            rows.append(row)
            d, p = row["decode_tokens_per_s"], row["per_token_latency_s"]
            print(
                f"batch {batch}: decode tok/s infercomp {d['infercomp']:.1f} optimum-benchmark "
                f"{d['optimum_benchmark']:.1f} ratio {d['ratio']:.3f}; per-token latency ms "
                f"{p['infercomp'] * 1e3:.2f} vs {p['optimum_benchmark'] * 1e3:.2f} ratio {p['ratio']:.3f}; "
                f"median of per-round ratios: decode tok/s {d['paired_ratio_median']:.3f}, "
                f"per-token latency {p['paired_ratio_median']:.3f}",
                flush=True,
            )
    print(json.dumps({"threads": args.threads, "rounds": args.rounds, "iterations": args.iterations, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
