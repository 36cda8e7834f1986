#!/usr/bin/env bash
# Raw output: docs/measurements/2026-11-28-h200/call-2.
# The benchmark on the lent H200, the workloads the validation call left: batch 1 and 4
# with both engines in one run, then the speculative workload (Qwen3-0.6B draft) on each engine;
# one GPU, at most 9 min 25 s.
#   OUT=dir bash benchmarks/sessions/gpu_session_h200_bench.sh
#  a. benchmarks/fast_engine.py --only qwen-b4, both engines
#  b. benchmarks/fast_engine.py --only qwen-spec, fast engine
#  c. benchmarks/fast_engine.py --only qwen-spec, reference engine (what time is left)
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_h200_bench.sh}
. benchmarks/deadline.sh
begin_session b4 spec spec-ref
DEADLINE=$((start + 565))
step a 330 "$OUT/b4.txt" "$OUT/b4.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/b4" --parts qwen --engines fast,transformers --only qwen-b4
step b 150 "$OUT/spec.txt" "$OUT/spec.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/spec" --parts qwen --engines fast --only qwen-spec
step c 270 "$OUT/spec-ref.txt" "$OUT/spec-ref.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/spec-ref" --parts qwen --engines transformers --only qwen-spec
cat "$OUT/session.txt"
grep -hE "^\| qwen|^== " "$OUT"/b4.txt "$OUT"/spec.txt "$OUT"/spec-ref.txt | cut -c1-400
grep -A 30 "Speculative mechanism" "$OUT/spec.txt" | head -34
grep -hE "Error|error:" "$OUT"/b4.txt "$OUT"/spec*.txt | head -5
