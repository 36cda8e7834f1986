# A record of call 1 (docs/measurements/2026-11-28-h100-rows/call-1): its step b failed at compile (the kernel's lookup inside the compiled region), since fixed.
# A record of call 2 (docs/measurements/2026-11-28-h100-rows/call-2): the even split (stream) lost and was removed.
# Infercomp's own few-row products (fast/rows_kernel.py: per row block, and split evenly over the
# SMs) against cuBLAS, alone and in the batch-32 step; one H100, one call of at most 9 min.
#   OUT=dir bash benchmarks/sessions/gpu_session_stream.sh
#  a. benchmarks/gemm_bench.py: each Qwen3-4B weight at 32 rows, cuBLAS and the Triton kernel's
#     block sizes x stages x column splits, and the even split's programs an SM x block sizes
#  b. Qwen3-4B batch 32, greedy: defaults; the per-block kernel for every product (rows; the same
#     parts as cuBLAS, o:4, down:4); the even split at 1 program an SM, 4 and 6 stages, and 2
#     programs an SM, 3 stages
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_stream.sh}
. benchmarks/deadline.sh
begin_session gemm p32
DEADLINE=$((start + 540))
step a 150 "$OUT/gemm/log.txt" "$OUT/gemm/log.txt" \
  "$PYTHON" benchmarks/gemm_bench.py --out "$OUT/gemm"
step b 370 "$OUT/profile-32.txt" "$OUT/profile-32.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p32" --cases 32g \
  --variants rows,stream-1-64-128-4-4,stream-1-64-128-4-6,stream-2-64-128-4-3
cat "$OUT/session.txt"; grep -h "^variant\|decode step" "$OUT"/profile-*.txt | cut -c1-40,200-400
grep -hE "Error|error:" "$OUT"/profile-*.txt | head -5
grep -h "WRONG\|FAILED" "$OUT/gemm/log.txt" | head; sort -k3 -n "$OUT/gemm/gemm_bench.txt" 2>/dev/null | head -0
