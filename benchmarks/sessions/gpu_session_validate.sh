#!/usr/bin/env bash
# Raw output: docs/measurements/2026-11-28-h200/call-1.
# The checks the last H100 session left to run, on the lent H200 (the same Hopper chip with
# faster memory): the engines' whole GPU test file (bf16 agreement with the norm chain, the kernels'
# checks), the batch-32 benchmark with both engines in one run, and the norm chain against
# its absence in one process at batch 32 and 4; one GPU, at most 9 min 25 s.
#   OUT=dir bash benchmarks/sessions/gpu_session_validate.sh
#  a. tests/test_fast_engine_gpu.py, every test; the bf16 agreement figures into gpu_report.jsonl
#     (docs/measurements/2026-11-28-h200 call-1 ran this before that line was added: its test
#     passed its thresholds, and its figures were not kept)
#  b. benchmarks/fast_engine.py --only qwen-b32, both engines in one run
#  c. Qwen3-4B batch 32 and 4, greedy: defaults; norm-chain-off
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_validate.sh}
. benchmarks/deadline.sh
begin_session p32 b32
DEADLINE=$((start + 565))
step a 240 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  env INFERCOMP_GPU_REPORT="$OUT/gpu_report.jsonl" "$PYTHON" -m pytest -v --tb=short -m gpu -p no:cacheprovider tests/test_fast_engine_gpu.py
step b 180 "$OUT/b32.txt" "$OUT/b32.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/b32" --parts qwen --engines fast,transformers --only qwen-b32
step c 200 "$OUT/profile.txt" "$OUT/profile.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p32" --cases 32g,4g --variants norm-chain-off
cat "$OUT/session.txt"; grep -h "^variant\|decode step" "$OUT"/profile.txt | cut -c1-40,200-400
grep -hE "PASSED|FAILED|SKIPPED|^E |passed|failed" "$OUT"/pytest_gpu.txt | tail -30
grep -hE "^\| qwen|^== |copy_bandwidth" "$OUT/b32.txt" | cut -c1-400
