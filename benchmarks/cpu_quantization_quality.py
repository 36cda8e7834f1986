"""Each weight kind on the embedded pair on CPU (float32), with its default recipe and, for int8 and
int4, infercomp's own format: does it run, its weight bytes, and the perplexity delta against
float32 (`settings.quantization_quality`).

Usage (from the repository root): python benchmarks/cpu_quantization_quality.py --out FILE.json
A kind that cannot run here is recorded with its one-line reason.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from infercomp.config import load_config  # noqa: E402
from infercomp.loader import load_engine  # noqa: E402
from infercomp.measure.memory import weight_bytes  # noqa: E402
from infercomp.models import ModelLoadError  # noqa: E402
from infercomp.quantize import RECIPE_ENV  # noqa: E402


def one(kind: str, engine_name: str, recipe: str | None = None) -> dict:
    """One kind on one engine; `recipe` picks a recipe other than the kind's default."""
    os.environ.pop(RECIPE_ENV, None)
    if recipe:
        os.environ[RECIPE_ENV] = recipe
    overrides = dict(engine=engine_name, quantization=kind, use_quantization=False, device="cpu", dtype="float32")
    try:
        engine = load_engine(load_config("quick", overrides, embedded=True), need_assistant=False)
    except ModelLoadError as exc:
        return {"kind": kind, "engine": engine_name, "recipe": recipe, "runs": False, "reason": str(exc)}
    s = engine.settings
    return {
        "kind": kind,
        "engine": s.engine,
        "runs": True,
        "recipe": s.quantization_recipe,
        "weights_bytes": weight_bytes(engine.main),
        "quantization_seconds": s.quantization_seconds,
        "quality": s.quantization_quality,
        "notes": [n for n in s.notes if "quantization" in n or "engine" in n],
    }


def main() -> None:
    import torch
    import torchao

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    kinds = [(k, None) for k in ("none", "int8", "int4", "fp8", "nf4")] + [
        ("int8", "int8-infercomp"),
        ("int4", "int4-infercomp"),
    ]
    rows = [one(kind, engine, recipe) for kind, recipe in kinds for engine in ("transformers", "fast")]
    for r in rows:
        q = r.get("quality") or {}
        print(
            r["kind"],
            r.get("recipe"),
            r["engine"],
            r.get("weights_bytes"),
            q.get("relative_delta"),
            r.get("reason", ""),
        )
    env = {
        "torch": torch.__version__,
        "torchao": torchao.__version__,
        "cpu": platform.processor() or platform.machine(),
    }
    Path(args.out).write_text(
        json.dumps({"environment": env, "model": "embedded:main", "kinds": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
