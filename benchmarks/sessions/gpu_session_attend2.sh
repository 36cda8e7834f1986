#!/usr/bin/env bash
# Decode attention split across the slots, and top-p by Triton kernels, on one H100, one call of
# at most 9 min 40 s. From the repository root:   OUT=dir bash benchmarks/sessions/gpu_session_attend2.sh
#  a. profile_fast_step.py, Qwen3-4B: batch 1 greedy, 32 greedy, 32 nucleus: ms/step and kernels
#  b. profile_fast_step.py, Qwen3-0.6B batch 1 greedy: the draft step
#  c. pytest -m gpu: float32 greedy / speculative / beams against the reference, bf16 agreement,
#     top-p kernels against the PyTorch search, then the packed weights' float32 engine tests
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_attend2.sh}
. benchmarks/deadline.sh
begin_session
DEADLINE=$((start + 578))
step a 220 "$OUT/profile-4b.txt" "$OUT/profile-4b.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT" --cases 1g,32g,32s
step b 80 "$OUT/profile-0.6b.txt" "$OUT/profile-0.6b.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT" --model Qwen/Qwen3-0.6B --cases 1g
step c 300 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  "$PYTHON" -m pytest -v -m gpu -k "top_p or float32_greedy or beams or agreement or float32_packed" \
  -p no:cacheprovider tests/test_fast_engine_gpu.py
cat "$OUT/session.txt"; grep -h "decode step\|attend\|top_p\|mass_pass\|keep_kernel" "$OUT"/profile-*.txt; grep -E "passed|failed|PASSED|FAILED" "$OUT/pytest_gpu.txt"
