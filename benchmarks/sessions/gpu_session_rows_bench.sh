#!/usr/bin/env bash
# The engine benchmark with infercomp's few-row products on by default; one H100, one call of at
# most 8 min 20 s.
#   OUT=dir bash benchmarks/sessions/gpu_session_rows_bench.sh
#  a. benchmarks/fast_engine.py --only qwen-b32, both engines in one run
#  b. benchmarks/fast_engine.py --parts qwen --engines fast: every Qwen3-4B workload (batch 1, 4,
#     32, speculative with the Qwen3-0.6B draft) on the fast engine
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_rows_bench.sh}
. benchmarks/deadline.sh
begin_session b32 bench
DEADLINE=$((start + 500))
step a 160 "$OUT/b32.txt" "$OUT/b32.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/b32" --parts qwen --engines fast,transformers --only qwen-b32
step b 335 "$OUT/bench.txt" "$OUT/bench.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/bench" --parts qwen --engines fast
cat "$OUT/session.txt"
grep -hE "^\| qwen|^== " "$OUT/b32.txt" "$OUT/bench.txt"; grep -A 30 "Speculative mechanism" "$OUT/bench.txt" | head -34
grep -hE "Error|error:" "$OUT"/b32.txt "$OUT"/bench.txt | head -5
