"""One quantization recipe on one engine: Qwen3-4B random weights, batch 1, per-step decode time.

Usage (GPU, from the repository root; one recipe per process, so a kernel that fails or poisons
the CUDA context cannot take the others with it):
    python benchmarks/quant_kernels.py --engine fast --recipe int4-tile-packed [--out FILE.jsonl]
`--recipe none` is the bf16 baseline. Prints one line and appends one JSON object to FILE:
engine, recipe, kind, ms per decode step (greedy, 128 new tokens after a 32-token prompt, the
best of 3 timed calls after one warm-up), weight bytes after quantization, quantization seconds
and the notes; a failure prints and records its one-line error instead.
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


def run(engine_name: str, recipe: str, model: str, device: str) -> dict:
    from fast_engine import prompt_of

    from infercomp.config import load_config
    from infercomp.loader import load_engine
    from infercomp.measure.memory import weight_bytes
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
    s = engine.settings
    start = time.perf_counter()
    engine.generate([0], do_sample=False)  # compiles and captures on the fast engine
    warm_s = time.perf_counter() - start
    steps = [engine.generate([0], do_sample=False).inter_token_latency_s * 1000 for _ in range(3)]
    return {
        "engine": s.engine,
        "recipe": s.quantization_recipe or "none",
        "kind": s.quantization,
        "ms_per_step": round(min(steps), 3),
        "ms_per_step_all": [round(x, 3) for x in steps],
        "weight_gb": round(weight_bytes(engine.main) / 1e9, 3),
        "quantize_s": s.quantization_seconds,
        "first_call_s": round(warm_s, 1),
        "notes": s.notes,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["fast", "transformers"], required=True)
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--model", default="Qwen/Qwen3-4B")
    ap.add_argument("--device", default="cuda", help="cpu: a smoke test of the script only")
    ap.add_argument("--label", help="the name printed and recorded (default: the recipe)")
    ap.add_argument("--out")
    args = ap.parse_args()
    label = args.label or args.recipe
    try:
        record = run(args.engine, args.recipe, args.model, args.device)
        record["label"] = label
        line = f"{args.engine:12s} {label:24s} {record['ms_per_step']:8.3f} ms/step  {record['weight_gb']:.2f} GB"
    except Exception as exc:  # noqa: BLE001 - every failure is a result here, reported in one line
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        record = {
            "engine": args.engine,
            "recipe": args.recipe,
            "label": args.label or args.recipe,
            "error": f"{type(exc).__name__}: {first}",
        }
        line = f"{args.engine:12s} {label:24s} FAILED {record['error']}"
    print(line, flush=True)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
