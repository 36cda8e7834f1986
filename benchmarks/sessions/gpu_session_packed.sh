#!/usr/bin/env bash
# infercomp's own int8 / int4 formats and kernels (fast/packed.py) on one H100, in one call of at
# most 9 min 35 s (Qwen3-4B random weights). Run from the repository root:
#   OUT=dir bash benchmarks/sessions/gpu_session_packed.sh
#  0. benchmarks/packed_kernels.py: each projection's one-row kernel alone per format (us, TB/s)
#     -> $OUT/packed_kernels.{txt,jsonl}
#  a. batch 1, fast engine, each recipe in its own process (gpu_quantization.sh -> quant_kernels.py):
#     bf16 (the baseline, in the same call), int4-infercomp (token table int8), int8-infercomp
#     -> $OUT/quant/quant_kernels.{txt,jsonl}
#  b. pytest -m gpu -k packed tests/test_fast_engine_gpu.py: bf16 products against the
#     dequantized weight, then float32 tokens of both engines with the packed weights (batch 1
#     and 8) -> $OUT/pytest_packed_gpu.txt
#  c. what time is left: the two own recipes on the reference engine (stock generate())
# A first call compiles every kernel shape and autotunes the Triton kernels (about a minute for
# bf16): each recipe gets up to 130 s. Every step writes straight into files; session.txt has
# the times.
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_packed.sh}
. benchmarks/deadline.sh
begin_session quant
timeout "${KERNELS_LIMIT:-90}" "$PYTHON" benchmarks/packed_kernels.py --out "$OUT/packed_kernels.jsonl" \
  > "$OUT/packed_kernels.txt" 2>&1
echo "0. kernels rc $? at +$(($(date +%s) - start)) s" >> "$OUT/session.txt"
DEADLINE=$((start + 440)) OUT="$OUT/quant" LIMIT=${QUANT_LIMIT:-130} TABLE=int8 \
  FAST=${FAST:-"none int4-infercomp int8-infercomp"} REF="" INDUCTOR="" \
  bash benchmarks/gpu_quantization.sh >> "$OUT/session.txt" 2>&1
echo "a. done at +$(($(date +%s) - start)) s" >> "$OUT/session.txt"
DEADLINE=$((start + 575))
cap=$(seconds_for 160)
if [ "$cap" = 0 ]; then
  echo "b. skipped: the session's time ran out" >> "$OUT/session.txt"
else
  timeout "$cap" "$PYTHON" -m pytest -v -m gpu -k packed -p no:cacheprovider tests/test_fast_engine_gpu.py \
    > "$OUT/pytest_packed_gpu.txt" 2>&1
  echo "b. pytest rc $? at +$(($(date +%s) - start)) s" >> "$OUT/session.txt"
fi
DEADLINE=$((start + 580)) OUT="$OUT/quant" LIMIT=90 TABLE=int8 FAST="" REF=${REF-"int4-infercomp int8-infercomp"} \
  INDUCTOR="" bash benchmarks/gpu_quantization.sh >> "$OUT/session.txt" 2>&1
echo "c. done at +$(($(date +%s) - start)) s" >> "$OUT/session.txt"
cat "$OUT/session.txt"
