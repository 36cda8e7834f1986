#!/usr/bin/env bash
# Decode attention in one kernel (fast/attend.py) with the one-row kernels' PDL, on one H100, one
# call of at most 9 min 40 s. From the repository root:   OUT=dir bash benchmarks/gpu_session_attend.sh
#  a. profile_fast_step.py, Qwen3-4B: batch 1 greedy, 32 greedy, 32 nucleus: ms/step and kernels
#  b. profile_fast_step.py, Qwen3-0.6B batch 1 greedy: the draft step
#  c. quant_kernels.py bf16 with INFERCOMP_FAST_ATTENTION=matmul: batch 1 without the kernel
#  d. pytest -m gpu: float32 greedy / speculative / beams against the reference, bf16 agreement
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/gpu_session_attend.sh}
. benchmarks/deadline.sh
begin_session quant
DEADLINE=$((start + 578))
timeout "$(seconds_for 230)" "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT" --cases 1g,32g,32s \
  > "$OUT/profile-4b.txt" 2>&1
echo "a. rc $? at +$(($(date +%s) - start)) s" >> "$OUT/session.txt"
timeout "$(seconds_for 90)" "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT" --model Qwen/Qwen3-0.6B \
  --cases 1g > "$OUT/profile-0.6b.txt" 2>&1
echo "b. rc $? at +$(($(date +%s) - start)) s" >> "$OUT/session.txt"
cap=$(seconds_for 110)
if [ "$cap" != 0 ]; then
  INFERCOMP_FAST_ATTENTION=matmul timeout "$cap" "$PYTHON" benchmarks/quant_kernels.py --engine fast --recipe none \
    --label "none attention=matmul" --out "$OUT/quant/quant_kernels.jsonl" >> "$OUT/quant/quant_kernels.txt" 2>&1
  echo "c. rc $? at +$(($(date +%s) - start)) s" >> "$OUT/session.txt"
fi
cap=$(seconds_for 200)
if [ "$cap" != 0 ]; then
  timeout "$cap" "$PYTHON" -m pytest -v -m gpu -k "float32_greedy or beams or agreement or float32_packed" \
    -p no:cacheprovider tests/test_fast_engine_gpu.py > "$OUT/pytest_gpu.txt" 2>&1
  echo "d. rc $? at +$(($(date +%s) - start)) s" >> "$OUT/session.txt"
fi
cat "$OUT/session.txt" "$OUT/quant/quant_kernels.txt"; grep -h "decode step\|device time\|attend\|kernels per step" "$OUT"/profile-*.txt
