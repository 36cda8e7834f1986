#!/usr/bin/env bash
# A record of call 3 (at 5cde23c, docs/measurements/2026-11-27-h100-rows-prefetch/call-3-tiles): its whole-rows variant is the default since, so step a now names a removed variant.
# Tile choices for the short chains of a batch-1 step, on one H100, one call of at most 9 min 40 s;
# every comparison within one process (profile_fast_step --variants).
#   OUT=dir bash benchmarks/sessions/gpu_session_tiles.sh
#  a. Qwen3-0.6B batch 1 (the draft step): defaults; one-row products of rows up to 2,048 columns
#     in one tile (whole-rows); the attention's slots 32 / 128 at a time; 8 / 2 warps
#  b. the GPU tests not yet run on this code: the bf16 fused attention block, the packed float32
#     weights against the reference
#  c. Qwen3-4B batch 1: defaults; the attention variants
#  d. tests/test_gpu.py (memory, energy, bf16 speculative agreement) with what time is left
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_tiles.sh}
. benchmarks/deadline.sh
begin_session p06 p4
DEADLINE=$((start + 575))
step a 170 "$OUT/profile-0.6b.txt" "$OUT/profile-0.6b.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p06" --model Qwen/Qwen3-0.6B --cases 1g \
  --variants whole-rows,attend-block-32,attend-block-128,attend-warps-8,attend-warps-2
step b 100 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  "$PYTHON" -m pytest -v -m gpu -p no:cacheprovider tests/test_fast_engine_gpu.py -k "fused_attention_block or packed_weights_match"
step c 130 "$OUT/profile-4b.txt" "$OUT/profile-4b.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p4" --cases 1g \
  --variants attend-block-32,attend-block-128,attend-warps-8
step d 200 "$OUT/test_gpu.txt" "$OUT/test_gpu.txt" \
  "$PYTHON" -m pytest -v -m gpu -p no:cacheprovider tests/test_gpu.py
cat "$OUT/session.txt"; grep -h "^variant\|decode step" "$OUT"/profile-*.txt
grep -hE "Error|error:" "$OUT"/profile-*.txt | head -8; grep -hE "PASSED|FAILED|SKIPPED|passed|failed" "$OUT"/pytest_gpu.txt "$OUT"/test_gpu.txt
