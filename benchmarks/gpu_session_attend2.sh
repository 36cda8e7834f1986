#!/usr/bin/env bash
# Decode attention split across the slots, and top-p by Triton kernels, on one H100, one call of
# at most 9 min 40 s. From the repository root:   OUT=dir bash benchmarks/gpu_session_attend2.sh
#  a. profile_fast_step.py, Qwen3-4B: batch 1 greedy, 32 greedy, 32 nucleus: ms/step and kernels
#  b. profile_fast_step.py, Qwen3-0.6B batch 1 greedy: the draft step
#  c. pytest -m gpu: float32 greedy / speculative / beams against the reference, bf16 agreement,
#     top-p kernels against the PyTorch search, then the packed weights' float32 engine tests
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/gpu_session_attend2.sh}
. benchmarks/deadline.sh
begin_session
DEADLINE=$((start + 578))
timeout "$(seconds_for 220)" "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT" --cases 1g,32g,32s \
  > "$OUT/profile-4b.txt" 2>&1
echo "a. rc $? at +$(($(date +%s) - start)) s" >> "$OUT/session.txt"
timeout "$(seconds_for 80)" "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT" --model Qwen/Qwen3-0.6B \
  --cases 1g > "$OUT/profile-0.6b.txt" 2>&1
echo "b. rc $? at +$(($(date +%s) - start)) s" >> "$OUT/session.txt"
cap=$(seconds_for 300)
if [ "$cap" != 0 ]; then
  timeout "$cap" "$PYTHON" -m pytest -v -m gpu -k "top_p or float32_greedy or beams or agreement or float32_packed" \
    -p no:cacheprovider tests/test_fast_engine_gpu.py > "$OUT/pytest_gpu.txt" 2>&1
  echo "c. rc $? at +$(($(date +%s) - start)) s" >> "$OUT/session.txt"
fi
cat "$OUT/session.txt"; grep -h "decode step\|attend\|top_p\|mass_pass\|keep_kernel" "$OUT"/profile-*.txt; grep -E "passed|failed|PASSED|FAILED" "$OUT/pytest_gpu.txt"
