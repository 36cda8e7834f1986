#!/usr/bin/env bash
# Infercomp's few-row products on by default, gate|up fused with its activation: alone, in the GPU
# tests, and in the batch-32 and batch-4 steps against cuBLAS; one H100, one call of at most 8 min.
#   OUT=dir bash benchmarks/sessions/gpu_session_gated.sh
#  a. benchmarks/gemm_bench.py: each Qwen3-4B weight at 32 rows, cuBLAS and the kernels' block
#     sizes; gate|up also with its activation in one kernel
#  b. GPU tests: the few-row kernels against cuBLAS at Qwen3-4B's shapes, and the bf16 agreement
#     of both engines (batch 8: the few-row kernels' path)
#  c. Qwen3-4B batch 32 and 4, greedy: defaults; gate|up's product and activation apart
#     (gated-off); cuBLAS for every product (rows-off)
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_gated.sh}
. benchmarks/deadline.sh
begin_session gemm p32
DEADLINE=$((start + 470))
step a 80 "$OUT/gemm/log.txt" "$OUT/gemm/log.txt" \
  "$PYTHON" benchmarks/gemm_bench.py --out "$OUT/gemm"
step b 110 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  "$PYTHON" -m pytest -v --tb=short -m gpu -p no:cacheprovider tests/test_fast_engine_gpu.py \
  -k "few_row or bf16_agreement"
step c 300 "$OUT/profile.txt" "$OUT/profile.txt" env TRITON_PRINT_AUTOTUNING=1 \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p32" --cases 32g,4g --variants gated-off,rows-off
cat "$OUT/session.txt"; grep -h "^variant\|decode step" "$OUT"/profile.txt | cut -c1-40,200-400
grep -hE "Error|error:" "$OUT"/profile.txt | head -5
grep -hE "PASSED|FAILED|SKIPPED|^E " "$OUT"/pytest_gpu.txt | head -12
grep -h "WRONG" "$OUT/gemm/log.txt" | head; grep -h "^best\|gated" "$OUT/gemm/gemm_bench.txt"
