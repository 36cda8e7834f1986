#!/usr/bin/env bash
# Column splits in the one-row kernels (fast/gemv_kernel.py) and the int8 token table for int8
# weights, on one H100, in one call of at most 9 min 40 s (Qwen3-4B random weights). From the
# repository root:   OUT=dir bash benchmarks/sessions/gpu_session_splits.sh
#  0. benchmarks/gemv_splits.py: every block size and split per layer shape of Qwen3-4B and
#     Qwen3-0.6B, weights streamed from memory -> $OUT/gemv_splits.{txt,jsonl}
#  a. pytest -m gpu -k "column_splits or packed_products": the split kernels compiled, exact and
#     repeatable; the packed products -> $OUT/pytest_gpu.txt
#  b. batch 1, fast engine, one process each (quant_kernels.py): bf16 with the autotuned list that
#     now holds split candidates; int8-infercomp with the int8 token table, then with a bf16 table
#     -> $OUT/quant/quant_kernels.{txt,jsonl}
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_splits.sh}
. benchmarks/deadline.sh
begin_session quant
step 0. "${SWEEP_LIMIT:-220}" "$OUT/gemv_splits.txt" "$OUT/gemv_splits.txt" \
  "$PYTHON" benchmarks/gemv_splits.py --out "$OUT/gemv_splits.jsonl"
step a. 60 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  "$PYTHON" -m pytest -v -m gpu -k "column_splits or packed_products" -p no:cacheprovider tests/test_fast_engine_gpu.py
q="$OUT/quant"
DEADLINE=$((start + 575))
for run in "none int8" "int8-infercomp int8" "int8-infercomp none"; do
  set -- $run
  step "b. $run" 140 "$q/quant_kernels.txt" "$q/stderr.txt" \
    "$PYTHON" benchmarks/quant_kernels.py --engine fast --recipe "$1" --table "$2" --out "$q/quant_kernels.jsonl"
done
cat "$OUT/session.txt" "$q/quant_kernels.txt"
