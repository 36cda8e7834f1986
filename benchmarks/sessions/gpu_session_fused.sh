#!/usr/bin/env bash
# The decode attention block in one kernel (norms, rotation, cache write, attention) and the step's
# small operations compiled, on one H100, one call of at most 9 min 40 s. From the repository root:
#   OUT=dir bash benchmarks/sessions/gpu_session_fused.sh
#  a. profile_fast_step.py, Qwen3-4B batch 1 and 32 greedy, the defaults (both on)
#  b. the same for Qwen3-0.6B batch 1 (the draft step)
#  c. both off (INFERCOMP_FAST_FUSED_ROPE=0 INFERCOMP_FAST_COMPILE_GLUE=0), Qwen3-4B and -0.6B
#     batch 1, on the same machine; then the 0.6B with only the bookkeeping uncompiled
#  d. pytest -m gpu tests/test_fast_engine_gpu.py: float32 tokens against the reference etc.
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_fused.sh}
. benchmarks/deadline.sh
begin_session on off glue-off
DEADLINE=$((start + 578))
step a 170 "$OUT/profile-4b.txt" "$OUT/profile-4b.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/on" --cases 1g,32g
step b 70 "$OUT/profile-0.6b.txt" "$OUT/profile-0.6b.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/on" --model Qwen/Qwen3-0.6B --cases 1g
step c1 100 "$OUT/profile-off.txt" "$OUT/profile-off.txt" env INFERCOMP_FAST_FUSED_ROPE=0 INFERCOMP_FAST_COMPILE_GLUE=0 \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/off" --cases 1g
step c2 60 "$OUT/profile-off.txt" "$OUT/profile-off.txt" env INFERCOMP_FAST_FUSED_ROPE=0 INFERCOMP_FAST_COMPILE_GLUE=0 \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/off" --model Qwen/Qwen3-0.6B --cases 1g
step c3 60 "$OUT/profile-off.txt" "$OUT/profile-off.txt" env INFERCOMP_FAST_COMPILE_GLUE=0 \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/glue-off" --model Qwen/Qwen3-0.6B --cases 1g
step d 150 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  "$PYTHON" -m pytest -v -m gpu -p no:cacheprovider tests/test_fast_engine_gpu.py
cat "$OUT/session.txt"; grep -h "decode step\|kernels per step" "$OUT"/*/profile-*.txt
grep -hE "Error|error:" "$OUT"/profile-*.txt | head -5; grep -E "passed|failed|FAILED" "$OUT/pytest_gpu.txt"
