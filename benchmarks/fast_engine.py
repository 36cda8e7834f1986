"""Benchmark: the fast engine against the reference engine (stock generate()), same run, same machine.

Usage (from the repository root, on a machine with a CUDA GPU):
    python benchmarks/fast_engine.py --out DIR [--parts qwen,embedded] [--repeats 3]
On CPU (the embedded pair only):
    python benchmarks/fast_engine.py --out DIR --parts embedded --device cpu

Workloads (fixed length, greedy unless the method samples, one process per engine so both
engines are measured on the same warm machine):
  qwen      Qwen3-4B main + Qwen3-0.6B assistant, random bf16 weights, a 32-token prompt, 128 new
            tokens. "b4": standard and standard_speculative (k = 4) at batch 1, batched,
            nucleus_sampling and beam_search (4 beams) at batch 4. "b32": batched and
            nucleus_sampling at batch 32.
  embedded  the embedded pair, standard and batched (4 rows) with their speculative variants, 128
            new tokens: real acceptance, so the measured speculative speedup can stand next to
            the predicted one.
Writes DIR/<workload>-<engine>/results.json (infercomp's own results), DIR/summary.json and
DIR/summary.md (the tables), and DIR/environment.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from infercomp.config import load_config  # noqa: E402
from infercomp.runner import run_experiment  # noqa: E402
from infercomp.speculative.accounting import expected_accepted_length  # noqa: E402

PROMPT_TOKENS = 32
NEW_TOKENS = 128
QWEN = {"main_model": "Qwen/Qwen3-4B", "assistant_model": "Qwen/Qwen3-0.6B", "load_format": "random"}
EMBEDDED = {"main_model": "embedded:main", "assistant_model": "embedded:assistant"}
SPEC_K = 4


def prompt_of(tokens: int) -> str:
    """A text that the embedded tokenizer (used for random-weight models) reads as `tokens` tokens."""
    from transformers import AutoTokenizer

    from infercomp.models import EMBEDDED as FOLDERS

    tok = AutoTokenizer.from_pretrained(str(FOLDERS["embedded:main"]))
    words = ("once upon a time there was a little fox who lived near a quiet river and loved to sing " * 8).split()
    for n in range(1, len(words)):
        text = " ".join(words[:n])
        if len(tok(text)["input_ids"]) >= tokens:
            ids = tok(text)["input_ids"][:tokens]
            return tok.decode(ids)
    raise RuntimeError("prompt too short")


def workloads(parts: list[str], device: str) -> list[tuple[str, dict]]:
    base = {
        "max_new_tokens": NEW_TOKENS,
        "fixed_length": True,
        "temperature": 0.0,
        "num_assistant_tokens": SPEC_K,
        "isolation": "none",
        "quality": False,
        "device": device,
        "warmup_runs": 1,
    }
    out = []
    if "qwen" in parts:
        p = prompt_of(PROMPT_TOKENS)
        b4 = dict(
            base,
            **QWEN,
            prompts=[p],
            num_completions=4,
            batch_size=4,
            methods_to_test=["standard", "batched", "nucleus_sampling", "beam_search"],
        )
        # One call: the reference engine's draft-and-verify takes ~18 s per 128-token call here.
        spec = dict(
            base,
            **QWEN,
            prompts=[p],
            num_completions=1,
            batch_size=1,
            methods_to_test=["standard", "standard_speculative"],
        )
        b32 = dict(
            base,
            **QWEN,
            prompts=[p],
            num_completions=32,
            batch_size=32,
            methods_to_test=["batched", "nucleus_sampling"],
        )
        out += [("qwen-b4", b4), ("qwen-spec", spec), ("qwen-b32", b32)]
    if "embedded" in parts:
        prompts = ["Once upon a time", "generate short bed time story containing word elephant and cake"]
        emb = dict(
            base,
            **EMBEDDED,
            prompts=prompts,
            num_completions=4,
            batch_size=4,
            methods_to_test=["standard", "standard_speculative", "batched", "batched_speculative"],
        )
        out.append(("embedded", emb))
    return out


def summarize(name: str, engine: str, results) -> list[dict]:
    rows = []
    for method, m in results.methods.items():
        s = m.summary
        row = {"workload": name, "engine": engine, "method": method, "status": m.status, "reason": m.reason}
        if s is not None:
            calls = s.calls
            rows_per_call = max(1, s.new_tokens // max(calls, 1) // NEW_TOKENS)
            row.update(
                tokens_per_second=s.tokens_per_second,
                tps_runs=s.tokens_per_second_runs,
                ms_per_step=None if s.inter_token_latency_s is None else s.inter_token_latency_s * 1000,
                ttft_ms=None if s.ttft_s is None else s.ttft_s * 1000,
                rows_per_call=rows_per_call,
                peak_gb=s.peak_memory_gb,
                warmup_s=s.warmup_time_s,
                compile_s=s.compile_time_s,
                call_s=s.total_time_s / max(calls, 1),
                roofline=None if s.roofline is None else s.roofline.share,
            )
        if m.speculative is not None:
            sp = m.speculative
            row.update(
                acceptance=sp.acceptance_rate,
                draft_step_ms=sp.draft_time_s / max(1, sp.rounds * sp.draft_length) * 1000 if sp.draft_time_s else None,
                verify_ms=sp.verify_time_s / max(1, sp.rounds) * 1000,
                measured_speedup=sp.measured_speedup,
                predicted_speedup=sp.predicted_speedup,
            )
        rows.append(row)
    return rows


def add_payback(rows: list[dict]) -> None:
    """Calls after which the fast engine's compile time is repaid: compile / (reference call time -
    fast call time), per workload and method, where both engines ran."""
    ref = {(r["workload"], r["method"]): r for r in rows if r["engine"] == "transformers" and r.get("call_s")}
    for r in rows:
        other = ref.get((r["workload"], r["method"]))
        if r["engine"] == "fast" and other and r.get("compile_s") is not None and r.get("call_s"):
            saved = other["call_s"] - r["call_s"]
            r["payback_calls"] = r["compile_s"] / saved if saved > 0 else None


def mechanism(rows: list[dict]) -> dict:
    """The speculative mechanism's costs on the fast engine, batch 1, from the measured rows."""
    get = {(r["workload"], r["engine"], r["method"]): r for r in rows}
    out = {}
    for workload in {r["workload"] for r in rows}:
        std = get.get((workload, "fast", "standard"))
        spec = get.get((workload, "fast", "standard_speculative"))
        if not std or not spec or std.get("ms_per_step") is None or spec.get("verify_ms") is None:
            continue
        step = std["ms_per_step"]
        c = (spec["draft_step_ms"] or 0.0) / step
        v = spec["verify_ms"] / step
        pred = {str(a): expected_accepted_length(a, SPEC_K) / (SPEC_K * c + v) for a in (0.6, 0.8, 0.9)}
        out[workload] = {
            "decode_step_ms": step,
            "draft_step_ms": spec["draft_step_ms"],
            "draft_over_main": c,
            "verify_ms": spec["verify_ms"],
            "verify_over_decode": v,
            "k": SPEC_K,
            "predicted_speedup_at_acceptance": pred,
            "measured_acceptance": spec.get("acceptance"),
            "measured_speedup": spec.get("measured_speedup"),
        }
    return out


def table(rows: list[dict]) -> str:
    head = (
        "| workload | method | engine | rows/call | ms/step | tok/s | TTFT ms | peak GB | warm-up s | roofline "
        "| compile s | calls to repay it |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in sorted(rows, key=lambda r: (r["workload"], r["method"], r["engine"])):
        if r["status"] != "ok":
            lines.append(f"| {r['workload']} | {r['method']} | {r['engine']} | {r['status']}: {r['reason']} |")
            continue

        def f(key, fmt, r=r):
            v = r.get(key)
            return "" if v is None else format(v, fmt)

        lines.append(
            f"| {r['workload']} | {r['method']} | {r['engine']} | {r['rows_per_call']} | {f('ms_per_step', '.2f')} | "
            f"{f('tokens_per_second', ',.0f')} | {f('ttft_ms', '.1f')} | {f('peak_gb', '.2f')} | "
            f"{f('warmup_s', '.1f')} | {f('roofline', '.1%')} | {f('compile_s', '.1f')} | {f('payback_calls', '.1f')} |"
        )
    return "\n".join(lines)


def environment(device: str) -> dict:
    import torch
    import transformers

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }
    if device == "cuda":
        env["gpu"] = torch.cuda.get_device_name(0)
        try:
            import triton

            env["triton"] = triton.__version__
        except ImportError:
            pass
        from infercomp.measure.bandwidth import measure_bandwidth_gbs

        env["copy_bandwidth_gbs"] = measure_bandwidth_gbs("cuda")
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--parts", default="qwen,embedded")
    ap.add_argument("--engines", default="fast,transformers")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--only", default="", help="comma-separated workload names to run")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = environment(args.device)
    (out / "environment.json").write_text(json.dumps(env, indent=2))
    print(json.dumps(env), flush=True)
    rows: list[dict] = []
    for name, overrides in workloads(args.parts.split(","), args.device):
        if args.only and name not in args.only.split(","):
            continue
        for engine in args.engines.split(","):
            cfg = load_config("example", overrides=dict(overrides, engine=engine, repeats=args.repeats))
            start = time.perf_counter()
            results = run_experiment(cfg, out / f"{name}-{engine}")
            took = time.perf_counter() - start
            part = summarize(name, engine, results)
            print(
                f"== {name} / {engine}: {took:.0f} s; settings {json.dumps(results.settings.get('compile'))}",
                flush=True,
            )
            print(table(part), flush=True)
            rows += part
            (out / "summary.json").write_text(json.dumps({"rows": rows, "mechanism": mechanism(rows)}, indent=2))
    add_payback(rows)
    summary = {"environment": env, "rows": rows, "mechanism": mechanism(rows)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    text = (
        table(rows)
        + "\n\nSpeculative mechanism (fast engine, batch 1):\n```\n"
        + json.dumps(summary["mechanism"], indent=2)
        + "\n```\n"
    )
    (out / "summary.md").write_text(text)
    print(text, flush=True)


if __name__ == "__main__":
    main()
