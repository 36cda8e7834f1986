#!/usr/bin/env bash
# Decode attention in one kernel (fast/attend.py) with the one-row kernels' PDL, on one H100, one
# call of at most 9 min 40 s. From the repository root:   OUT=dir bash benchmarks/sessions/gpu_session_attend.sh
#  a. profile_fast_step.py, Qwen3-4B: batch 1 greedy, 32 greedy, 32 nucleus: ms/step and kernels
#  b. profile_fast_step.py, Qwen3-0.6B batch 1 greedy: the draft step
#  c. quant_kernels.py bf16 with INFERCOMP_FAST_ATTENTION=matmul: batch 1 without the kernel
#  d. pytest -m gpu: float32 greedy / speculative / beams against the reference, bf16 agreement
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_attend.sh}
. benchmarks/deadline.sh
begin_session quant
DEADLINE=$((start + 578))
step a 230 "$OUT/profile-4b.txt" "$OUT/profile-4b.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT" --cases 1g,32g,32s
step b 90 "$OUT/profile-0.6b.txt" "$OUT/profile-0.6b.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT" --model Qwen/Qwen3-0.6B --cases 1g
step c 110 "$OUT/quant/quant_kernels.txt" "$OUT/quant/quant_kernels.txt" \
  env INFERCOMP_FAST_ATTENTION=matmul "$PYTHON" benchmarks/quant_kernels.py --engine fast --recipe none \
  --label "none attention=matmul" --out "$OUT/quant/quant_kernels.jsonl"
step d 200 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  "$PYTHON" -m pytest -v -m gpu -k "float32_greedy or beams or agreement or float32_packed" \
  -p no:cacheprovider tests/test_fast_engine_gpu.py
cat "$OUT/session.txt" "$OUT/quant/quant_kernels.txt"; grep -h "decode step\|device time\|attend\|kernels per step" "$OUT"/profile-*.txt
