#!/usr/bin/env bash
# The benchmark on the final code, after benchmarks/sessions/gpu_session_blocks.sh (the
# block kernel on by default since). Batch 32 with both engines in one run (the nucleus row with
# the 2-bit top-p digits), then every Qwen3-4B workload on the fast engine.
# One H200, at most 9 min 30 s.
#   OUT=dir bash benchmarks/sessions/gpu_session_h200_rebench.sh
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_h200_rebench.sh}
. benchmarks/deadline.sh
begin_session b32 bench
DEADLINE=$((start + 570))
step a 200 "$OUT/b32.txt" "$OUT/b32.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/b32" --parts qwen --engines fast,transformers --only qwen-b32
step b 360 "$OUT/bench.txt" "$OUT/bench.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/bench" --parts qwen --engines fast
cat "$OUT/session.txt"
grep -hE "^\| qwen|^== " "$OUT/b32.txt" "$OUT/bench.txt" | cut -c1-300; grep -A 30 "Speculative mechanism" "$OUT/bench.txt" | head -34
