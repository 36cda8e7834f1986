"""The fast engine's KV-cache kinds side by side on one workload: the cache's measured bytes (its
tensors: codes and scales) against the formula, the decode time per step, and quality against the
model-dtype cache: greedy token agreement, and the perplexity of each kind's greedy completions
under the model (skipped on random weights, where it means nothing).

Usage (repository root):
  GPU, the long_context preset (random weights; quality skipped):
    python benchmarks/kv_cache_kinds.py --config long_context --rows 16 --new 16 --out OUT.jsonl
  CPU, the embedded pair in bfloat16 (quality; "reference" is the reference engine's own greedy
  text in the same dtype, for the agreement two engines' roundings alone reach):
    python benchmarks/kv_cache_kinds.py --embedded --config example --dtype bfloat16 --rows 4 --new 100 \
      --kinds model,int8,fp8,reference --out OUT.jsonl
Each kind is one JSON line; a kind that fails is recorded with its one-line error.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from infercomp.config import load_config, parse_override  # noqa: E402
from infercomp.fast.kvcache import bytes_per_token  # noqa: E402
from infercomp.loader import load_engine  # noqa: E402
from infercomp.quality import Scored, common_prefix, perplexities  # noqa: E402

KINDS = {
    "model": {"cache_implementation": "static"},  # the model dtype (the fast engine's own cache)
    "int8": {"cache_implementation": "quantized", "kv_cache_dtype": "int8"},
    "fp8": {"cache_implementation": "quantized", "kv_cache_dtype": "fp8"},
    "offloaded": {"cache_implementation": "offloaded"},  # host memory (CUDA only)
    # the reference engine in the model dtype: how far two engines' roundings alone move greedy text
    "reference": {"engine": "transformers", "cache_implementation": "dynamic"},
}


def run_kind(name: str, args, reference: list[list[int]] | None) -> tuple[dict, list[list[int]] | None]:
    overrides = {"engine": "fast", "max_new_tokens": args.new, "batch_size": args.rows, **KINDS[name]}
    fast = overrides["engine"] == "fast"
    if args.dtype:
        overrides["dtype"] = args.dtype
    overrides.update(parse_override(text) for text in args.set)
    cfg = load_config(args.config, overrides=overrides, embedded=args.embedded)
    cuda = torch.cuda.is_available()
    engine = load_engine(cfg, need_assistant=False)
    if fast and type(engine).__name__ != "FastEngine":
        return {"kind": name, "error": f"the fast engine did not run: {engine.settings.notes}"}, None
    index = [i % len(cfg.prompts) for i in range(args.rows)]
    if cuda and getattr(getattr(engine, "rt", None), "capture", True):
        engine.generate(index, do_sample=False)  # compile and capture this shape, outside the timing
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    out = engine.generate(index, do_sample=False)
    tokens = [r.token_ids for r in out.rows]
    rec = {
        "kind": name,
        "device": engine.settings.device,
        "dtype": engine.settings.dtype,
        "compile": engine.settings.compile,
        "engine": engine.settings.engine,
        "rows": len(out.rows),
        "prompt_tokens": max(r.prompt_tokens for r in out.rows),
        "kv_cache_bytes": out.kv_cache_bytes,  # measured: the cache's tensors
        "inter_token_latency_s": out.inter_token_latency_s,
        "seconds": out.seconds,
        "gpu_allocated_peak_bytes": torch.cuda.max_memory_allocated() if cuda else None,
    }
    if fast:
        shape, cap = engine.lean.shape, engine.cap
        rec["slots"] = cap.slots
        rec["kv_formula_bytes"] = bytes_per_token(shape, engine.lean.dtype, engine.kv_kind) * cap.rows * cap.slots
        rec["kv_bytes_per_row"] = out.kv_cache_bytes // cap.rows
        rec["weights_bytes"] = engine.lean.weight_bytes()
        if hasattr(engine.cache, "device_nbytes"):  # offloaded: the part held on the device
            rec["kv_device_bytes"] = engine.cache.device_nbytes()
    if reference is not None:
        same = sum(sum(x == y for x, y in zip(a, b, strict=False)) for a, b in zip(reference, tokens, strict=True))
        total = sum(max(len(a), len(b)) for a, b in zip(reference, tokens, strict=True))
        rec["greedy_agreement"] = same / total  # tokens equal at the same position, vs the model-dtype cache
        rec["rows_identical"] = sum(a == b for a, b in zip(reference, tokens, strict=True)) / len(tokens)
        rec["mean_common_prefix"] = sum(common_prefix(a, b) for a, b in zip(reference, tokens, strict=True)) / len(
            tokens
        )
    if cfg.load_format == "random":
        rec["perplexity"] = "skipped: random weights"
    else:
        prompt_ids = [engine.tokenizer(p)["input_ids"] for p in cfg.prompts]
        items = [Scored(i, t, "") for i, t in zip(index, tokens, strict=True)]
        ppl = [p for p in perplexities(engine.main, prompt_ids, items, engine.tokenizer.pad_token_id) if p is not None]
        rec["perplexity"] = sum(ppl) / len(ppl) if ppl else None
    del engine, out
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return rec, tokens


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="long_context")
    ap.add_argument("--embedded", action="store_true")
    ap.add_argument("--dtype", default=None)
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--new", type=int, default=16)
    ap.add_argument("--kinds", default="model,int8,fp8")
    ap.add_argument("--set", action="append", default=[], help="key=value config override, as on the CLI")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    reference, base = None, {}  # the model-dtype kind's tokens and record (run it first)
    with open(args.out, "a", encoding="utf-8") as fh:
        for name in args.kinds.split(","):
            try:
                rec, tokens = run_kind(name, args, reference)
            except Exception as exc:  # one kind's failure must not lose the others
                rec, tokens = {"kind": name, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}, None
            if name == "model":
                reference, base = tokens, rec
            elif rec.get("kv_cache_bytes") and base.get("kv_cache_bytes"):
                rec["bytes_vs_model_dtype"] = rec["kv_cache_bytes"] / base["kv_cache_bytes"]
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
