"""One quantization recipe on one engine: Qwen3-4B random weights, batch 1, per-step decode time.

Usage (GPU, from the repository root; one recipe per process, so a kernel that fails or poisons
the CUDA context cannot take the others with it):
    python benchmarks/quant_kernels.py --engine fast --recipe int4-tile-packed [--out FILE.jsonl]
`--recipe none` is the bf16 baseline. Prints one line and appends one JSON object to FILE:
engine, recipe, kind, ms per decode step (greedy, 128 new tokens after a 32-token prompt, the
best of 3 timed calls after one warm-up), weight bytes after quantization (`weight_gb`: the
transformers model's parameters and buffers; `engine_weight_gb`: the fast engine's own tensors,
LeanModel.weight_bytes), quantization seconds and the notes; a failure prints and records its
one-line error instead.

The int4 and int8 kinds also quantize the token table (embedding and tied LM head) to int8
(`infercomp.quant_table`); `--table none` keeps it in the model dtype (label `RECIPE+bf16-table`).
Each table kind needs a process of its own: swapping the table in a measured engine and capturing
its steps again failed in PyTorch's allocator on an H100 (docs/measurements/2026-11-27-h100-quantization-2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def run(engine_name: str, recipe: str, model: str, device: str):
    """(the record of one measurement, the loaded engine)."""
    from fast_engine import prompt_of

    from infercomp.config import load_config
    from infercomp.loader import load_engine
    from infercomp.quantize import RECIPE_ENV, RECIPES

    kind = "none" if recipe == "none" else RECIPES[recipe].kind
    if recipe != "none":
        os.environ[RECIPE_ENV] = recipe
    cfg = load_config(
        "example",
        overrides=dict(
            main_model=model,
            assistant_model=None,
            load_format="random",
            prompts=[prompt_of(32)],
            num_completions=1,
            batch_size=1,
            max_new_tokens=128,
            fixed_length=True,
            temperature=0.0,
            engine=engine_name,
            device=device,
            quantization=kind,
            quality=False,
        ),
    )
    engine = load_engine(cfg, need_assistant=False)
    return measure(engine), engine


def measure(engine) -> dict:
    from infercomp.measure.memory import weight_bytes

    s = engine.settings
    start = time.perf_counter()
    engine.generate([0], do_sample=False)  # compiles and captures on the fast engine
    warm_s = time.perf_counter() - start
    steps = [engine.generate([0], do_sample=False).inter_token_latency_s * 1000 for _ in range(3)]
    lean = getattr(engine, "lean", None)
    return {
        "engine": s.engine,
        "recipe": s.quantization_recipe or "none",
        "kind": s.quantization,
        "ms_per_step": round(min(steps), 3),
        "ms_per_step_all": [round(x, 3) for x in steps],
        "weight_gb": round(weight_bytes(engine.main) / 1e9, 3),
        "engine_weight_gb": None if lean is None else round(lean.weight_bytes() / 1e9, 3),
        "token_table": type(engine.main.lm_head).__name__,  # Linear (model dtype) or TableHead (int8)
        "quantize_s": s.quantization_seconds,
        "first_call_s": round(warm_s, 1),
        "compile": dict(s.compile) if getattr(s, "compile", None) else None,  # fast engine: mode, seconds
        "notes": list(s.notes),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["fast", "transformers"], required=True)
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--model", default="Qwen/Qwen3-4B")
    ap.add_argument("--device", default="cuda", help="cpu: a smoke test of the script only")
    ap.add_argument("--label", help="the name printed and recorded (default: the recipe)")
    ap.add_argument("--out")
    ap.add_argument(
        "--table",
        choices=["int8", "none"],
        default="int8",
        help="the integer kinds' token table: int8 (the default) or none (model dtype)",
    )
    args = ap.parse_args()
    from infercomp.quant_table import TABLE_ENV, TABLE_KINDS
    from infercomp.quantize import RECIPES

    label = args.label or args.recipe
    has_table = args.recipe in RECIPES and RECIPES[args.recipe].kind in TABLE_KINDS
    if args.table != "int8" and has_table:
        os.environ[TABLE_ENV] = "none"
        label += "+bf16-table"
    try:
        record, engine = run(args.engine, args.recipe, args.model, args.device)
        report(args, record, label)
    except Exception as exc:  # noqa: BLE001 - every failure is a result here, reported in one line
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        record = {"engine": args.engine, "recipe": args.recipe, "error": f"{type(exc).__name__}: {first}"}
        report(args, record, label)
    sys.stdout.flush()
    os._exit(0)  # skip the interpreter's teardown (compile workers, CUDA): it overran limits


def report(args, record: dict, label: str) -> None:
    """One printed line and one JSON line, written at once (a later kill keeps them)."""
    record["label"] = label
    if "error" in record:
        line = f"{args.engine:12s} {label:24s} FAILED {record['error']}"
    else:
        line = f"{args.engine:12s} {label:24s} {record['ms_per_step']:8.3f} ms/step  {record['weight_gb']:.2f} GB"
        if record.get("engine_weight_gb") is not None:
            line += f" (engine {record['engine_weight_gb']:.2f} GB, table {record['token_table']})"
        line += f"  first call {record['first_call_s']} s"
    print(line, flush=True)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
