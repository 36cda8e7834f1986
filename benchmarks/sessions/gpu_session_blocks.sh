#!/usr/bin/env bash
# Ran as call 1 of docs/measurements/2026-11-28-h200-blocks (step b1 ran out of its cap while
# compiling; call 4 there, gpu_session_h200_unfused.sh, measured the unfused path; b1 now sets
# the block kernel off itself, since it is on by default). The verify pass's attention through
# fast/attend_kernel.py (fast.attend.BLOCKS: each of the k + 1 queries over its row's valid slots,
# one kernel a layer; short prefills, the draft's 32-token one included, go through it too)
# against the unfused path over the whole cache, on the speculative workload. One H200,
# at most 9 min 30 s; the second call, benchmarks/sessions/gpu_session_h200_rebench.sh, repeats the
# issue's whole benchmark on the final code (the nucleus row with the 2-bit top-p digits).
#   OUT=dir bash benchmarks/sessions/gpu_session_blocks.sh
#  a. tests/test_fast_engine_gpu.py with the block kernel on: the float32 speculative tokens (its
#     verify passes), the kernel against float64, bf16 agreement (figures into gpu_report.jsonl),
#     the top-p and fused-attention kernels
#  b. benchmarks/fast_engine.py --only qwen-spec, fast engine: unfused verify, then the block kernel
#     (two processes; the settings' compile mode names the block kernel where it is on)
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_blocks.sh}
. benchmarks/deadline.sh
begin_session spec spec-blocks
DEADLINE=$((start + 570))
step a 190 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  env INFERCOMP_GPU_REPORT="$OUT/gpu_report.jsonl" INFERCOMP_FAST_BLOCK_ATTENTION=1 \
  "$PYTHON" -m pytest -v --tb=short -m gpu -p no:cacheprovider tests/test_fast_engine_gpu.py \
  -k "float32_greedy or bf16_agreement or block_attention or top_p or fused_attention"
step b1 165 "$OUT/spec.txt" "$OUT/spec.txt" env INFERCOMP_FAST_BLOCK_ATTENTION=0 \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/spec" --parts qwen --engines fast --only qwen-spec
step b2 165 "$OUT/spec-blocks.txt" "$OUT/spec-blocks.txt" env INFERCOMP_FAST_BLOCK_ATTENTION=1 \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/spec-blocks" --parts qwen --engines fast --only qwen-spec
cat "$OUT/session.txt"
grep -hE "PASSED|FAILED|passed|failed" "$OUT"/pytest_gpu.txt | tail -6; cat "$OUT/gpu_report.jsonl" 2>/dev/null
grep -hE "^\| qwen|^== " "$OUT"/spec.txt "$OUT"/spec-blocks.txt | cut -c1-300
grep -h -A8 '"qwen-spec"' "$OUT"/spec/summary.md "$OUT"/spec-blocks/summary.md 2>/dev/null
