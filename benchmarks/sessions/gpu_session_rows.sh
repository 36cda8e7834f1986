#!/usr/bin/env bash
# A record of call 1 (docs/measurements/2026-11-27-h100-rows-prefetch/call-1-rows): steps a and d need bde0dbc, where the kernel was.
# The few-rows kernel (fast/rows_kernel.py) on one H100, one call of at most 9 min 40 s, and the
# one-row chain's per-kernel cost. From the repository root:
#   OUT=dir bash benchmarks/sessions/gpu_session_rows.sh
#  a. profile_fast_step.py, Qwen3-4B batch 32 greedy: the rows kernel (default), then
#     INFERCOMP_FAST_ROWS=0 (cuBLAS and compiled norms) on the same machine
#  b. pytest -m gpu: float32 greedy / speculative / beams against the reference (batch 8, the
#     verify block and the beams now go through the rows kernel), bf16 agreement
#  c. gemv_splits.py --chain: a step's four one-row products per layer in a row, tiny / 0.6B / 4B
#     weights, PDL on, on with the L2 prefetch, off
#  d. rows_configs.py (removed with the kernel, bde0dbc): every candidate block size per 4B shape
#  e. profile_fast_step.py, Qwen3-0.6B batch 1, INFERCOMP_GEMV_PREFETCH=1 then 0
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_rows.sh}
. benchmarks/deadline.sh
begin_session rows cublas prefetch plain
DEADLINE=$((start + 578))
step a1 130 "$OUT/profile-32.txt" "$OUT/profile-32.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/rows" --cases 32g
step a2 70 "$OUT/profile-32-cublas.txt" "$OUT/profile-32-cublas.txt" env INFERCOMP_FAST_ROWS=0 \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/cublas" --cases 32g
step b 150 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  "$PYTHON" -m pytest -v -m gpu -p no:cacheprovider tests/test_fast_engine_gpu.py -k "float32_greedy or float32_beams or bf16_agreement"
step c 50 "$OUT/chain.txt" "$OUT/chain.txt" \
  "$PYTHON" benchmarks/gemv_splits.py --chain 8 --models tiny,0.6b,4b --out "$OUT/chain.jsonl"
step d 90 "$OUT/rows_configs.txt" "$OUT/rows_configs.txt" \
  "$PYTHON" benchmarks/rows_configs.py --out "$OUT/rows_configs.jsonl"
step e1 50 "$OUT/profile-0.6b.txt" "$OUT/profile-0.6b.txt" env INFERCOMP_GEMV_PREFETCH=1 \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/prefetch" --model Qwen/Qwen3-0.6B --cases 1g
step e2 50 "$OUT/profile-0.6b.txt" "$OUT/profile-0.6b.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/plain" --model Qwen/Qwen3-0.6B --cases 1g
cat "$OUT/session.txt"; grep -h "decode step\|kernels per step" "$OUT"/*/profile-*.txt
grep -hE "Error|error:" "$OUT"/profile-*.txt "$OUT/chain.txt" "$OUT/rows_configs.txt" | head -8
grep -E "passed|failed|FAILED" "$OUT/pytest_gpu.txt"; grep "layer chain" "$OUT/chain.txt"
