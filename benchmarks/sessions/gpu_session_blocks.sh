#!/usr/bin/env bash
# Prepared for the next GPU session, not yet run. The verify pass's attention through
# fast/attend_kernel.py (fast.attend.BLOCKS: each of the k + 1 queries over its row's valid slots,
# one kernel a layer) against the unfused path over the whole cache, on the speculative
# workload; then the issue's whole benchmark on the final code, and the engines' GPU tests with
# the agreement figures kept. One H200, at most 9 min 30 s.
#   OUT=dir bash benchmarks/sessions/gpu_session_blocks.sh
#  a. tests/test_fast_engine_gpu.py, every test, the block kernel on (the float32 speculative test
#     then checks its verify passes token for token; test_block_attention_matches_float64 the kernel)
#  b. benchmarks/fast_engine.py --only qwen-spec, fast engine: unfused verify, then the block kernel
#  c. benchmarks/fast_engine.py --only qwen-b32 (both engines), then qwen-b4 (fast): the nucleus
#     row with the 2-bit top-p digits
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_blocks.sh}
. benchmarks/deadline.sh
begin_session spec spec-blocks b32 b4
DEADLINE=$((start + 570))
step a 200 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  env INFERCOMP_GPU_REPORT="$OUT/gpu_report.jsonl" INFERCOMP_FAST_BLOCK_ATTENTION=1 \
  "$PYTHON" -m pytest -v --tb=short -m gpu -p no:cacheprovider tests/test_fast_engine_gpu.py
step b1 120 "$OUT/spec.txt" "$OUT/spec.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/spec" --parts qwen --engines fast --only qwen-spec
step b2 120 "$OUT/spec-blocks.txt" "$OUT/spec-blocks.txt" env INFERCOMP_FAST_BLOCK_ATTENTION=1 \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/spec-blocks" --parts qwen --engines fast --only qwen-spec
step c1 150 "$OUT/b32.txt" "$OUT/b32.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/b32" --parts qwen --engines fast,transformers --only qwen-b32
step c2 170 "$OUT/b4.txt" "$OUT/b4.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/b4" --parts qwen --engines fast --only qwen-b4
cat "$OUT/session.txt"
grep -hE "PASSED|FAILED|passed|failed" "$OUT"/pytest_gpu.txt | tail -6; cat "$OUT/gpu_report.jsonl" 2>/dev/null
grep -hE "^\| qwen|^== " "$OUT"/spec.txt "$OUT"/spec-blocks.txt "$OUT"/b32.txt "$OUT"/b4.txt | cut -c1-300
grep -h -A8 '"qwen-spec"' "$OUT"/spec/summary.md "$OUT"/spec-blocks/summary.md 2>/dev/null
