#!/usr/bin/env bash
# The new defaults (whole-row tiles for rows of at most 2,048 columns, 128 attention slots a step)
# on one H100, in the session's last device minutes (at most 4 min 25 s). From the repository root:
#   OUT=dir bash benchmarks/sessions/gpu_session_last.sh
#  a. Qwen3-0.6B batch 1 (the draft step): the defaults; then 64 slots a step (whole rows alone)
#  b. the bf16 fused attention block against the unfused operations (128 slots a step now)
#  c. tests/test_gpu.py's memory and energy test, with its locals shown on failure
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_last.sh}
. benchmarks/deadline.sh
begin_session p06
DEADLINE=$((start + 265))
step a 120 "$OUT/profile-0.6b.txt" "$OUT/profile-0.6b.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p06" --model Qwen/Qwen3-0.6B --cases 1g --variants attend-block-64
step b 45 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  "$PYTHON" -m pytest -v -m gpu -p no:cacheprovider tests/test_fast_engine_gpu.py -k fused_attention_block
step c 100 "$OUT/test_gpu.txt" "$OUT/test_gpu.txt" \
  "$PYTHON" -m pytest -v -l --tb=long -m gpu -p no:cacheprovider "tests/test_gpu.py::test_cuda_memory_peaks_and_nvml_energy"
cat "$OUT/session.txt"; grep -h "^variant\|decode step" "$OUT"/profile-*.txt
grep -hE "PASSED|FAILED|^E " "$OUT"/pytest_gpu.txt "$OUT"/test_gpu.txt | head -30
