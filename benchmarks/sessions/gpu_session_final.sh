#!/usr/bin/env bash
# A record of an earlier call: the experiments it names (L2 prefetches, INFERCOMP_FAST_TRANSPOSED) lost and were removed (docs/measurements/2026-11-27-h100-rows-prefetch).
# The fused attention block, the compiled step bookkeeping (greedy argmax included) and the
# transposed products at 32 rows, with the GPU tests, on one H100 in one call of at most 9 min 40 s.
# From the repository root:   OUT=dir bash benchmarks/sessions/gpu_session_final.sh
#  a. profile_fast_step.py, Qwen3-4B batch 1 and 32 greedy, and Qwen3-0.6B batch 1: the defaults
#  b. Qwen3-4B batch 32 with every projection as weight @ x.T (INFERCOMP_FAST_TRANSPOSED=all)
#  c. pytest -m gpu tests/test_fast_engine_gpu.py with INFERCOMP_FAST_TRANSPOSED=all (batch 1 takes
#     the default path either way), less the kernel-only tests that passed in the previous call
#  d. tests/test_fast_kvcache_gpu.py; e. tests/test_gpu.py's memory and bf16 speculative tests
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_final.sh}
. benchmarks/deadline.sh
begin_session on transposed
DEADLINE=$((start + 578))
step a1 170 "$OUT/profile-4b.txt" "$OUT/profile-4b.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/on" --cases 1g,32g
step a2 70 "$OUT/profile-0.6b.txt" "$OUT/profile-0.6b.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/on" --model Qwen/Qwen3-0.6B --cases 1g
step b 80 "$OUT/profile-transposed.txt" "$OUT/profile-transposed.txt" env INFERCOMP_FAST_TRANSPOSED=all \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/transposed" --cases 32g
step c 170 "$OUT/test_fast_engine_gpu.txt" "$OUT/test_fast_engine_gpu.txt" env INFERCOMP_FAST_TRANSPOSED=all \
  "$PYTHON" -m pytest -v -m gpu -p no:cacheprovider tests/test_fast_engine_gpu.py -k "not column_splits and not products_match"
step d 50 "$OUT/test_fast_kvcache_gpu.txt" "$OUT/test_fast_kvcache_gpu.txt" \
  "$PYTHON" -m pytest -v -m gpu -p no:cacheprovider tests/test_fast_kvcache_gpu.py
step e 120 "$OUT/test_gpu.txt" "$OUT/test_gpu.txt" \
  "$PYTHON" -m pytest -v -m gpu -p no:cacheprovider tests/test_gpu.py -k "memory or speculative"
cat "$OUT/session.txt"; grep -h "decode step\|kernels per step" "$OUT"/*/profile-*.txt
grep -hE "Error|error:" "$OUT"/profile-*.txt | head -5; grep -hE "PASSED|FAILED|passed|failed" "$OUT"/test_*.txt
