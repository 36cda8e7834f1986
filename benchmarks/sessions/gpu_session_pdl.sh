#!/usr/bin/env bash
# Programmatic dependent launch (PDL) in the one-row kernels (fast/gemv_kernel.py,
# fast/packed_kernel.py) on one H100, one call of at most 9 min 40 s. From the repository root:
#   OUT=dir bash benchmarks/sessions/gpu_session_pdl.sh
#  0. benchmarks/gemv_splits.py --chain 8: a step's four products per layer in a row, PDL on/off,
#     Qwen3-4B and Qwen3-0.6B shapes -> $OUT/chain.{txt,jsonl}
#  a. pytest -m gpu: the split kernels, the packed products and both engines' float32 tokens
#     (PDL on: a missing wait would show as wrong tokens) -> $OUT/pytest_gpu.txt
#  b. batch 1, fast engine, one process each (quant_kernels.py): bf16 with PDL, bf16 without
#     (INFERCOMP_PDL=0), int8-infercomp (int8 token table) with PDL -> $OUT/quant/quant_kernels.*
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_pdl.sh}
. benchmarks/deadline.sh
begin_session quant
step 0. 150 "$OUT/chain.txt" "$OUT/chain.txt" \
  "$PYTHON" benchmarks/gemv_splits.py --chain 8 --out "$OUT/chain.jsonl"
q="$OUT/quant"
DEADLINE=$((start + 440))
for run in "none 1" "none 0" "int8-infercomp 1"; do
  set -- $run
  step "b. $run" 130 "$q/quant_kernels.txt" "$q/stderr.txt" \
    env INFERCOMP_PDL=$2 "$PYTHON" benchmarks/quant_kernels.py --engine fast --recipe "$1" \
    --label "$1 pdl=$2" --out "$q/quant_kernels.jsonl"
done
DEADLINE=$((start + 578))
step a. 140 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  "$PYTHON" -m pytest -v -m gpu -k "column_splits or packed or float32_greedy" -p no:cacheprovider \
  tests/test_fast_engine_gpu.py
cat "$OUT/session.txt" "$q/quant_kernels.txt" "$OUT/chain.txt"
