#!/usr/bin/env bash
# A record of call 1 (docs/measurements/2026-11-28-h100-rows/call-1): its step b failed at compile (the kernel's lookup inside the compiled region), since fixed.
# Infercomp's own few-row product (fast/rows_kernel.py) against cuBLAS, alone and in the batch-32
# step, and cuBLAS with gate|up's rows padded to 64; one H100, one call of at most 9 min.
#   OUT=dir bash benchmarks/sessions/gpu_session_rows.sh
#  a. benchmarks/gemm_bench.py: each Qwen3-4B weight at 32 rows, cuBLAS and the Triton kernel's
#     block sizes x stages x column splits
#  b. Qwen3-4B batch 32, greedy: defaults; the Triton kernel for every product (rows; the same
#     parts as cuBLAS, o:4, down:4); with o and down in 8 parts; gate|up padded to 64 rows
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_rows.sh}
. benchmarks/deadline.sh
begin_session gemm p32
DEADLINE=$((start + 530))
step a 230 "$OUT/gemm/log.txt" "$OUT/gemm/log.txt" \
  "$PYTHON" benchmarks/gemm_bench.py --out "$OUT/gemm"
step b 290 "$OUT/profile-32.txt" "$OUT/profile-32.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p32" --cases 32g \
  --variants rows,rows+partials-o4-down8,pad-gate_up-64
cat "$OUT/session.txt"; grep -h "^variant\|decode step" "$OUT"/profile-*.txt | cut -c1-40,200-400
grep -hE "Error|error:" "$OUT"/profile-*.txt | head -5
grep -h "WRONG\|FAILED" "$OUT/gemm/log.txt" | head; sort -k3 -n "$OUT/gemm/gemm_bench.txt" 2>/dev/null | head -0
