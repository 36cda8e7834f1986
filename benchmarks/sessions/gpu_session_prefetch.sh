#!/usr/bin/env bash
# A record of an earlier call: the experiments it names (L2 prefetches, INFERCOMP_FAST_TRANSPOSED) lost and were removed (docs/measurements/2026-11-27-h100-rows-prefetch).
# The L2 prefetches before the PDL wait, and two ways to steer cuBLAS at 32 rows, on one H100, one
# call of at most 9 min 40 s; every comparison within one process (profile_fast_step --variants).
#   OUT=dir bash benchmarks/sessions/gpu_session_prefetch.sh
#  a. Qwen3-0.6B batch 1 (the draft step): defaults; the one-row products prefetching their
#     weights; the attention prefetching the cached slots; both
#  b. Qwen3-4B batch 1: defaults; both prefetches
#  c. Qwen3-4B batch 32: defaults; attention prefetch; products as weight @ x.T; cuBLASLt
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_prefetch.sh}
. benchmarks/deadline.sh
begin_session p06 p4 p32
DEADLINE=$((start + 578))
step a 170 "$OUT/profile-0.6b.txt" "$OUT/profile-0.6b.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p06" --model Qwen/Qwen3-0.6B --cases 1g \
  --variants prefetch,attend-prefetch,prefetch+attend-prefetch
step b 150 "$OUT/profile-4b.txt" "$OUT/profile-4b.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p4" --cases 1g --variants prefetch+attend-prefetch
step c 180 "$OUT/profile-32.txt" "$OUT/profile-32.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p32" --cases 32g --variants attend-prefetch,transposed,cublaslt
cat "$OUT/session.txt"; grep -h "^variant\|decode step\|kernels per step" "$OUT"/profile-*.txt
grep -hE "Error|error:" "$OUT"/profile-*.txt | head -8
