"""Where a fast-engine decode step spends its time: kernels of one captured step, from the profiler.

Usage (GPU): python benchmarks/profile_fast_step.py --out DIR [--model Qwen/Qwen3-4B] [--cases 1g,32g,32s]
Builds the fast engine on random weights once; per case (rows, greedy or nucleus) runs one call
(which compiles and captures its steps), times three more, then profiles 20 replays of the decode
step and writes DIR/profile-<model>-b<rows>-<kind>-<tuned|untuned>.txt: kernels by total device
time with calls per step, and the bandwidth the weights' bytes imply at the measured step time.
INFERCOMP_FAST_TUNING=0 turns the compiler's block-size search off (then matrix-vector products
stay cuBLAS calls instead of fused reductions).

--variants a,b,...: after the defaults, the same cases again in the same process with one
experiment switched on per variant (VARIANTS, one at a time), each on a fresh fast engine over the
same loaded model, so the variants are compared on one machine; their files get the variant's name
as tag. A "both" variant: name two joined by "+", e.g. attend-block-64+attend-warps-8.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402

from infercomp.config import load_config  # noqa: E402
from infercomp.fast import build_fast_engine  # noqa: E402
from infercomp.loader import load_engine  # noqa: E402

REPLAYS = 20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="Qwen/Qwen3-4B")
    ap.add_argument(
        "--cases", default="1g", help="comma-separated rows + g (greedy) or s (nucleus: top-p 0.9, T 0.8), e.g. 1g,32s"
    )
    ap.add_argument("--tag", default="", help="appended to the output files' names")
    ap.add_argument("--variants", default="", help=f"comma-separated, from {', '.join(VARIANTS)}")
    args = ap.parse_args()
    unknown = {part for v in args.variants.split(",") if v for part in v.split("+")} - set(VARIANTS)
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(sorted(unknown))}; known: {', '.join(VARIANTS)}")
    cases = [(int(c[:-1]), c[-1] == "s") for c in args.cases.split(",")]
    reference = load_reference(args.model, max(rows for rows, _ in cases))
    tuning = "untuned" if os.environ.get("INFERCOMP_FAST_TUNING", "1") == "0" else "tuned"
    undo = lambda: None  # noqa: E731
    for variant in ["", *filter(None, args.variants.split(","))]:
        undo()
        if variant:
            print(f"variant {variant}", flush=True)
            undos = [VARIANTS[part]() for part in variant.split("+")]
            undo = lambda undos=undos: [u() for u in reversed(undos)]  # noqa: E731
        engine = build_fast_engine(reference)
        for rows, sampled in cases:
            text = profile_case(engine, args.model, rows, sampled, tuning)
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            kind = "nucleus" if sampled else "greedy"
            tag = args.tag + (f"-{variant}" if variant else "")
            name = f"profile-{args.model.split('/')[-1]}-b{rows}-{kind}-{tuning}{tag}.txt"
            (out / name).write_text(text)
        del engine
        torch.cuda.empty_cache()


def _switch(module: str, name: str, value):
    """A variant that sets module.name = value; returns the function that undoes it."""

    def on():
        import importlib

        target = importlib.import_module(module)
        before = getattr(target, name)
        setattr(target, name, value)
        return lambda: setattr(target, name, before)

    return on


def _partials(**splits: int):
    """A variant that adds float32 partial products (fast.products.PARTIALS) to those already on."""

    def on():
        from infercomp.fast import products

        before = products.PARTIALS
        products.PARTIALS = {**before, **splits}
        return lambda: setattr(products, "PARTIALS", before)

    return on


def _cublaslt():
    before = torch.backends.cuda.preferred_blas_library()
    torch.backends.cuda.preferred_blas_library("cublaslt")
    return lambda: torch.backends.cuda.preferred_blas_library(before)


# Settings read when a step is captured; each variant alone, the previous one undone. (The L2
# prefetches and the transposed products measured in docs/measurements/2026-11-27-h100-rows-prefetch,
# the residual added by cuBLAS in docs/measurements/2026-11-28-h100-partials, rows padded for
# cuBLAS, superseded by fast/rows_kernel.py before it was measured in the step, and the few-row
# products' 128-row blocks of 8 warps in docs/measurements/2026-11-28-h100-wide, were variants
# here until they lost and were removed.)
VARIANTS = {
    "cublaslt": _cublaslt,
    "attend-block-32": _switch("infercomp.fast.attend_kernel", "BLOCK_S", 32),
    "attend-block-64": _switch("infercomp.fast.attend_kernel", "BLOCK_S", 64),
    "attend-block-128": _switch("infercomp.fast.attend_kernel", "BLOCK_S", 128),
    "attend-block-256": _switch("infercomp.fast.attend_kernel", "BLOCK_S", 256),
    "attend-warps-2": _switch("infercomp.fast.attend_kernel", "WARPS", 2),
    "attend-warps-8": _switch("infercomp.fast.attend_kernel", "WARPS", 8),
    "attend-many-128": _switch("infercomp.fast.attend_kernel", "MANY_PROGRAMS_SLOTS", 128),
    "attend-many-32": _switch("infercomp.fast.attend_kernel", "MANY_PROGRAMS_SLOTS", 32),
    "attend-many-64": _switch("infercomp.fast.attend_kernel", "MANY_PROGRAMS_SLOTS", 64),
    "attend-many-warps-4": _switch("infercomp.fast.attend_kernel", "MANY_PROGRAMS_WARPS", 4),
    "attend-stages-1": _switch("infercomp.fast.attend_kernel", "STAGES", 1),
    "attend-stages-2": _switch("infercomp.fast.attend_kernel", "STAGES", 2),
    "attend-stages-4": _switch("infercomp.fast.attend_kernel", "STAGES", 4),
    "top-p-block-512": _switch("infercomp.fast.top_p_kernel", "BLOCK", 512),
    "top-p-chunk-2048": _switch("infercomp.fast.top_p_kernel", "CHUNK", 2048),
    "top-p-chunk-8192": _switch("infercomp.fast.top_p_kernel", "CHUNK", 8192),
    "top-p-warps-8": _switch("infercomp.fast.top_p_kernel", "WARPS", 8),
    "top-p-bits-2": _switch("infercomp.fast.top_p_kernel", "BITS", 2),  # below MANY_ROWS rows
    "top-p-many-bits-4": _switch("infercomp.fast.top_p_kernel", "BITS_MANY", 4),  # from MANY_ROWS rows
    "partials-o2-down4": _partials(o=2, down=4),
    "partials-o4-down8": _partials(o=4, down=8),
    "partials-gate_up2": _partials(gate_up=2),
    "partials-qkv2": _partials(qkv=2),
    "partials-off": _switch("infercomp.fast.products", "PARTIALS", {}),
    "draw-off": _switch("infercomp.fast.sampling", "_DRAW", False),
    "rows-off": _switch("infercomp.fast.products", "ROWS", False),
    "gated": _switch("infercomp.fast.products", "GATED", True),
    "norm-chain-off": _switch("infercomp.fast.model", "NORM_CHAIN", False),
    "early-off": _switch("infercomp.fast.rows_kernel", "TRIGGER", False),
    "prefetch-off": _switch("infercomp.fast.attend_kernel", "PREFETCH", False),
}


def load_reference(model: str, rows: int):
    """The reference engine with the model on random weights, to build fast engines from."""
    from fast_engine import prompt_of

    cfg = load_config(
        "example",
        overrides=dict(
            main_model=model,
            assistant_model=None,
            load_format="random",
            prompts=[prompt_of(32)],
            num_completions=rows,
            batch_size=rows,
            max_new_tokens=128,
            fixed_length=True,
            temperature=0.0,
            engine="fast",
            device="cuda",
        ),
    )
    return load_engine(cfg, need_assistant=False)


def profile_case(engine, model: str, rows: int, sampled: bool, tuning: str) -> str:
    """Compile and capture one shape, time three calls, profile REPLAYS replays of its decode step."""
    kwargs = dict(do_sample=True, temperature=0.8, top_p=0.9, top_k=0) if sampled else dict(do_sample=False)
    t = time.perf_counter()
    engine.generate([0] * rows, **kwargs)
    compile_s = time.perf_counter() - t
    steps_ms = [engine.generate([0] * rows, **kwargs).inter_token_latency_s * 1000 for _ in range(3)]
    decode = next(
        step
        for key, step in engine._steps.items()
        if key[0] == "decode" and key[1] == rows and key[2].do_sample == sampled
    )
    from torch.profiler import ProfilerActivity, profile

    for _ in range(3):
        decode()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        for _ in range(REPLAYS):
            decode()
        torch.cuda.synchronize()
    rows_k = []
    total = 0.0
    for e in prof.key_averages():
        dev = getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0)
        if dev <= 0:
            continue
        rows_k.append((dev / REPLAYS, e.count / REPLAYS, e.key))
        total += dev / REPLAYS
    rows_k.sort(reverse=True)
    kind = "nucleus" if sampled else "greedy"
    search = engine.rt.record.mode
    lines = [
        f"model {model} rows {rows} {kind} ({search}): first call (compile + capture) {compile_s:.1f} s; "
        f"decode step of 3 timed calls (CUDA events) {', '.join(f'{v:.3f}' for v in steps_ms)} ms",
        f"device time per step {total / 1000:.3f} ms (kernels summed over {REPLAYS} replays)",
        f"{'us/step':>9} {'calls/step':>10}  kernel",
    ]
    for us, calls, name in rows_k[:40]:
        lines.append(f"{us:9.1f} {calls:10.1f}  {name[:150]}")
    lines.append(f"kernels per step: {sum(c for _, c, _ in rows_k):.0f}")
    weights = engine.lean.weight_bytes()
    achieved = weights / (statistics.median(steps_ms) / 1000) / 1e9
    lines.append(f"weights {weights / 1e9:.3f} GB; at the median measured step time {achieved:.0f} GB/s")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


if __name__ == "__main__":
    main()
