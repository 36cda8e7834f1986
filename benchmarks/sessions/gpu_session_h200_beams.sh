#!/usr/bin/env bash
# The third call of the 2026-11-28 H200 session, after gpu_session_blocks.sh and
# gpu_session_h200_rebench.sh: the beam step's cache reorder in chunks of layers (fast/kvcache.py
# KVCache.reorder: a few copies over all layers where it launched two per layer's tensor), then the
# whole GPU test file on the final defaults (the block kernel on). One H200, at most 9 min 20 s.
#   OUT=dir bash benchmarks/sessions/gpu_session_h200_beams.sh
#  b. benchmarks/fast_engine.py --only qwen-b4, fast engine: batched, beam_search, nucleus and
#     standard at the shapes
#  a. tests/test_fast_engine_gpu.py (bf16 agreement figures into gpu_report.jsonl)
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_h200_beams.sh}
. benchmarks/deadline.sh
begin_session b4
DEADLINE=$((start + 560))
step b 230 "$OUT/b4.txt" "$OUT/b4.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/b4" --parts qwen --engines fast --only qwen-b4
step a 320 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  env INFERCOMP_GPU_REPORT="$OUT/gpu_report.jsonl" \
  "$PYTHON" -m pytest -v --tb=short -m gpu -p no:cacheprovider tests/test_fast_engine_gpu.py
cat "$OUT/session.txt"
grep -hE "^\| qwen|^== " "$OUT/b4.txt" | cut -c1-300
grep -hE "PASSED|FAILED|ERROR|passed|failed" "$OUT"/pytest_gpu.txt | tail -40; cat "$OUT/gpu_report.jsonl" 2>/dev/null
