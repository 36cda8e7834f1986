#!/usr/bin/env bash
# 128-row blocks with 8 warps for the few-row
# products (half the input rows' rereads from L2), alone and in the batch-32 and batch-4 steps,
# and the GPU test of gate|up's plain product that has not run; one H100, at most 6 min 30 s.
#   OUT=dir bash benchmarks/sessions/gpu_session_wide.sh
# (Run once, docs/measurements/2026-11-28-h100-wide; its variants were removed after it.)
#  a. benchmarks/gemm_bench.py: each Qwen3-4B weight at 32 rows, cuBLAS and the kernels' blocks
#  b. GPU tests: the few-row kernels against cuBLAS at Qwen3-4B's shapes, bf16 agreement
#  c. Qwen3-4B batch 32 and 4, greedy: defaults; rows-n128-w8; rows-wide (both lists together)
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_wide.sh}
. benchmarks/deadline.sh
begin_session gemm p32
DEADLINE=$((start + 390))
step a 60 "$OUT/gemm/log.txt" "$OUT/gemm/log.txt" \
  "$PYTHON" benchmarks/gemm_bench.py --out "$OUT/gemm"
step b 90 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  "$PYTHON" -m pytest -v --tb=short -m gpu -p no:cacheprovider tests/test_fast_engine_gpu.py \
  -k "few_row or bf16_agreement"
step c 240 "$OUT/profile.txt" "$OUT/profile.txt" env TRITON_PRINT_AUTOTUNING=1 \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p32" --cases 32g,4g --variants rows-n128-w8,rows-wide
cat "$OUT/session.txt"; grep -h "^variant\|decode step" "$OUT"/profile.txt | cut -c1-40,200-400
grep -hE "Error|error:" "$OUT"/profile.txt | head -5
grep -hE "PASSED|FAILED|SKIPPED|^E " "$OUT"/pytest_gpu.txt | head -12
grep -h "WRONG" "$OUT/gemm/log.txt" | head; grep -h "^best\|w8" "$OUT/gemm/gemm_bench.txt"
