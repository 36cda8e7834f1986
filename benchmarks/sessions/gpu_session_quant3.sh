#!/usr/bin/env bash
# The quantization measurements still missing, in one call of at most 9 minutes on one H100
# (Qwen3-4B random weights). Run from the repository root:
#   OUT=dir bash benchmarks/sessions/gpu_session_quant3.sh
#  a. int4 tile-packed on the fast engine with its token table in bf16, then with the int8 table
#     (a process per table kind), then each kind's default recipe on the reference engine (stock
#     generate(), batch 1): bf16, int4 tile-packed, int8 weight-only, fp8 dynamic per row
#     (gpu_quantization.sh -> quant_kernels.py) -> $OUT/quant/quant_kernels.{txt,jsonl}
#  b. long_context, fast engine: maxbatch for the bf16 and int8 KV caches, 512-token probes, the
#     size found confirmed with the full prompts (gpu_long_context.sh) -> $OUT/long/
# Time: a. until 5:30, b. until 9:00 (a step with under 15 s left is skipped and says so).
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_quant3.sh}
. benchmarks/deadline.sh
begin_session quant long
DEADLINE=$((start + 330)) OUT="$OUT/quant" LIMIT=${QUANT_LIMIT:-80} TABLE=both \
  FAST=${FAST:-"int4-tile-packed"} REF=${REF:-"none int4-tile-packed int8-weight-only fp8-dynamic-row"} INDUCTOR="" \
  bash benchmarks/gpu_quantization.sh >> "$OUT/session.txt" 2>&1
echo "a. done at +$(($(date +%s) - start)) s" >> "$OUT/session.txt"
DEADLINE=$((start + 540)) OUT="$OUT/long" BYTES=0 FP8=0 NEW=2 PROBE_TOKENS=512 SECONDS_EACH=${MAXBATCH_LIMIT:-100} \
  LIMIT=256 bash benchmarks/gpu_long_context.sh >> "$OUT/session.txt" 2>&1
echo "b. done at +$(($(date +%s) - start)) s" >> "$OUT/session.txt"
cat "$OUT/session.txt"
