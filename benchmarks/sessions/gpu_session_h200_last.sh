#!/usr/bin/env bash
# Raw output: docs/measurements/2026-11-28-h200/call-3.
# The last call on the lent H200: the batch-32 benchmark with both engines on the final
# code (the norm chain now only up to 8 rows), and where the batch-1 step, the nucleus step at 32
# rows and the Qwen3-0.6B draft step spend their time; one GPU, at most 8 min 40 s.
#   OUT=dir bash benchmarks/sessions/gpu_session_h200_last.sh
#  a. benchmarks/fast_engine.py --only qwen-b32, both engines in one run
#  b. kernels of the Qwen3-4B step at 1 row (greedy) and 32 rows (nucleus)
#  c. kernels of the Qwen3-0.6B step at 1 row (the draft's step)
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_h200_last.sh}
. benchmarks/deadline.sh
begin_session b32 p4b p06b
DEADLINE=$((start + 520))
step a 180 "$OUT/b32.txt" "$OUT/b32.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/b32" --parts qwen --engines fast,transformers --only qwen-b32
step b 150 "$OUT/profile.txt" "$OUT/profile.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p4b" --cases 1g,32s
step c 120 "$OUT/profile.txt" "$OUT/profile.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p06b" --model Qwen/Qwen3-0.6B --cases 1g
cat "$OUT/session.txt"; grep -h "decode step" "$OUT"/profile.txt | cut -c1-40,300-500
grep -hE "^\| qwen|^== |copy_bandwidth" "$OUT/b32.txt" | cut -c1-400
grep -hE "Error|error:" "$OUT"/b32.txt "$OUT"/profile.txt | head -5
