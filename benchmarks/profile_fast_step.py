"""Where a fast-engine decode step spends its time: kernels of one captured step, from the profiler.

Usage (GPU): python benchmarks/profile_fast_step.py --out DIR [--model Qwen/Qwen3-4B] [--rows 1]
Builds the fast engine on random weights, runs one call (which captures the steps), then profiles
20 replays of the decode step and writes DIR/profile-<model>-b<rows>.txt: kernels by total device
time, with calls per step, and the bytes the matrix-vector products read against their time.
"""

from __future__ import annotations

import argparse
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
    from fast_engine import prompt_of

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="Qwen/Qwen3-4B")
    ap.add_argument("--rows", type=int, default=1)
    ap.add_argument("--sample", action="store_true", help="nucleus sampling's step (top-p 0.9, T 0.8)")
    args = ap.parse_args()
    kwargs = dict(do_sample=True, temperature=0.8, top_p=0.9, top_k=0) if args.sample else dict(do_sample=False)
    cfg = load_config(
        "example",
        overrides=dict(
            main_model=args.model,
            assistant_model=None,
            load_format="random",
            prompts=[prompt_of(32)],
            num_completions=args.rows,
            batch_size=args.rows,
            max_new_tokens=128,
            fixed_length=True,
            temperature=0.0,
            engine="fast",
            device="cuda",
        ),
    )
    engine = build_fast_engine(load_engine(cfg, need_assistant=False))
    t = time.perf_counter()
    engine.generate([0] * args.rows, **kwargs)
    print(f"first call (compile + capture) {time.perf_counter() - t:.1f} s", flush=True)
    call = engine.generate([0] * args.rows, **kwargs)
    print(f"decode step {call.inter_token_latency_s * 1000:.3f} ms", flush=True)
    decode = next(step for key, step in engine._steps.items() if key[0] == "decode")
    from torch.profiler import ProfilerActivity, profile

    for _ in range(3):
        decode()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        for _ in range(REPLAYS):
            decode()
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.device_type.name == "CUDA" or getattr(e, "self_device_time_total", 0)]
    rows = []
    total = 0.0
    for e in prof.key_averages():
        dev = getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0)
        if dev <= 0:
            continue
        rows.append((dev / REPLAYS, e.count / REPLAYS, e.key))
        total += dev / REPLAYS
    rows.sort(reverse=True)
    kind = "nucleus" if args.sample else "greedy"
    lines = [f"model {args.model} rows {args.rows} {kind}: device time per step {total / 1000:.3f} ms (kernels summed)"]
    lines.append(f"{'us/step':>9} {'calls/step':>10}  kernel")
    for us, calls, name in rows[:40]:
        lines.append(f"{us:9.1f} {calls:10.1f}  {name[:150]}")
    lines.append(f"kernels per step: {sum(c for _, c, _ in rows):.0f}")
    weights = engine.lean.weight_bytes()
    achieved = weights / call.inter_token_latency_s / 1e9
    lines.append(f"weights {weights / 1e9:.3f} GB; at the measured step time {achieved:.0f} GB/s")
    text = "\n".join(lines)
    print(text, flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"profile-{args.model.split('/')[-1]}-b{args.rows}-{kind}.txt").write_text(text)
    del events


if __name__ == "__main__":
    main()
