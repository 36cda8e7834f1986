#!/usr/bin/env bash
# The quantization targets (#13) again with the final kernels (one-row kernels with PDL, decode
# attention kernel), on one H100, one call of at most 6 min: bf16, int8-infercomp and int4
# tile-packed (torchao), each with its token table as the recipes set it, batch 1, fast engine.
#   OUT=dir bash benchmarks/sessions/gpu_session_quant4.sh
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_quant4.sh}
. benchmarks/deadline.sh
begin_session quant
DEADLINE=$((start + 350))
for recipe in none int8-infercomp int4-tile-packed; do
  step "$recipe" 130 "$OUT/quant/quant_kernels.txt" "$OUT/quant/stderr.txt" \
    "$PYTHON" benchmarks/quant_kernels.py --engine fast --recipe "$recipe" --out "$OUT/quant/quant_kernels.jsonl"
done
cat "$OUT/session.txt" "$OUT/quant/quant_kernels.txt"
