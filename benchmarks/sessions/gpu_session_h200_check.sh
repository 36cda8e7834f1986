#!/usr/bin/env bash
# The last call of the 2026-11-28 H200 session, with the 245 s of device time left: the GPU tests
# that read and write the KV cache through the code after the measured calls (the cache's layer
# parts as indexed views, the lean forward under no_grad, the reorder's 64 MB chunks): float32
# tokens of both engines (greedy, speculative), float32 beam scores against transformers', bf16
# agreement. One H200, at most 3 min.
#   OUT=dir bash benchmarks/sessions/gpu_session_h200_check.sh
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_h200_check.sh}
. benchmarks/deadline.sh
begin_session
DEADLINE=$((start + 170))
step a 165 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  env INFERCOMP_GPU_REPORT="$OUT/gpu_report.jsonl" \
  "$PYTHON" -m pytest -v --tb=short -m gpu -p no:cacheprovider tests/test_fast_engine_gpu.py -k "float32_greedy or float32_beams or bf16_agreement"
cat "$OUT/session.txt"; grep -hE "PASSED|FAILED|ERROR|passed|failed" "$OUT/pytest_gpu.txt" | tail -8; cat "$OUT/gpu_report.jsonl" 2>/dev/null
