#!/usr/bin/env bash
# What is left to measure of the quantization work, in one call of at most 9 minutes on one H100
# (Qwen3-4B random weights). Run from the repository root:
#   OUT=dir bash benchmarks/sessions/gpu_session_quant2.sh
# Each step runs under its own time limit and writes straight into files under $OUT (no pipes):
#  a. weights, fast engine, batch 1 (gpu_quantization.sh -> quant_kernels.py, a process per
#     recipe): bf16; int4 tile-packed measured with its token table in bf16, then with the int8
#     table (TABLE=both: a process per table kind); fp8 dynamic per row; fp8 weight-only; int8 weight-only. Step ms,
#     weight bytes, compile seconds -> $OUT/quant/quant_kernels.{txt,jsonl}
#  b. long_context, fast engine: maxbatch per KV-cache kind (bf16 static, int8; fp8 with MAXBATCH_FP8=1), 2 new
#     tokens, probes with 512-token prompts in the 4,096-slot cache, the size found confirmed with
#     the full prompts (gpu_long_context.sh) -> $OUT/long/maxbatch*.{txt,err}
#  c. pytest -m gpu tests/test_fast_kvcache_gpu.py (the offloaded cache under capture)
#     -> $OUT/pytest_kvcache_gpu.txt
# Time: a. until 5:10, b. until 8:05, c. until 9:00 (each step gets what is left of its window,
# at most its own cap; a step with under 15 s left is skipped and says so). int8 weight-only
# runs last in a. (measured before: 1.46x), so it is the one cut if the window runs out.
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_quant2.sh}
. benchmarks/deadline.sh
begin_session quant long

DEADLINE=$((start + 310)) OUT="$OUT/quant" LIMIT=${QUANT_LIMIT:-75} TABLE=both \
  FAST=${FAST:-"none int4-tile-packed fp8-dynamic-row fp8-weight-only int8-weight-only"} REF="" INDUCTOR="" \
  bash benchmarks/gpu_quantization.sh >> "$OUT/session.txt" 2>&1
echo "a. done at +$(($(date +%s) - start)) s" >> "$OUT/session.txt"

# 90 s per search: at 60 s the int8 search (ten probes, 37 s) left too little for its full-prompt
# check of 224 rows. fp8 holds the same bytes as int8 and probed to the same 224 rows: MAXBATCH_FP8=1 adds it.
DEADLINE=$((start + 485)) OUT="$OUT/long" BYTES=0 FP8=${MAXBATCH_FP8:-0} NEW=2 PROBE_TOKENS=512 SECONDS_EACH=${MAXBATCH_LIMIT:-90} \
  LIMIT=256 bash benchmarks/gpu_long_context.sh >> "$OUT/session.txt" 2>&1
echo "b. done at +$(($(date +%s) - start)) s" >> "$OUT/session.txt"

DEADLINE=$((start + 538))
cap=$(seconds_for 55)
if [ "$cap" = 0 ]; then
  echo "c. skipped: the session's time ran out" >> "$OUT/session.txt"
else
  timeout "$cap" "$PYTHON" -m pytest -q -m gpu -p no:cacheprovider tests/test_fast_kvcache_gpu.py \
    > "$OUT/pytest_kvcache_gpu.txt" 2>&1
  echo "c. pytest rc $? at +$(($(date +%s) - start)) s" >> "$OUT/session.txt"
fi
cat "$OUT/session.txt"
