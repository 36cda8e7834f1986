#!/usr/bin/env bash
# A record of call 3 (docs/measurements/2026-11-28-h100-rows/call-3): its TMA and PDL variants lost and were removed.
# Infercomp's own few-row product (fast/rows_kernel.py), tiles by address or by the copy engine
# (TMA), with and without programmatic dependent launch, alone and in the batch-32 and batch-4
# steps; one H100, one call of at most 9 min 20 s.
#   OUT=dir bash benchmarks/sessions/gpu_session_tma.sh
#  a. benchmarks/gemm_bench.py: each Qwen3-4B weight at 32 rows, cuBLAS and both kernels' block
#     sizes x stages x column splits
#  b. Qwen3-4B batch 32 and 4, greedy: defaults (cuBLAS); rows; rows-tma; each with rows-pdl; the
#     autotuner's choices printed
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_tma.sh}
. benchmarks/deadline.sh
begin_session gemm p32
DEADLINE=$((start + 560))
step a 130 "$OUT/gemm/log.txt" "$OUT/gemm/log.txt" \
  "$PYTHON" benchmarks/gemm_bench.py --out "$OUT/gemm"
step b 420 "$OUT/profile.txt" "$OUT/profile.txt" env TRITON_PRINT_AUTOTUNING=1 \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p32" --cases 32g,4g \
  --variants rows,rows-tma,rows+rows-pdl,rows-tma+rows-pdl
cat "$OUT/session.txt"; grep -h "^variant\|decode step" "$OUT"/profile.txt | cut -c1-40,200-400
grep -hE "Error|error:" "$OUT"/profile.txt | head -5
grep -h "WRONG" "$OUT/gemm/log.txt" | head; grep -h "^best" "$OUT/gemm/gemm_bench.txt"
