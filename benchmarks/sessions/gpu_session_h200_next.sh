#!/usr/bin/env bash
# Prepared for the next GPU session, not yet run: what this session's device time left unmeasured.
#  a. qwen-b4 on the fast engine twice in one call (one machine): the beam step's reorder one
#     layer at a time (INFERCOMP_FAST_REORDER_MB=0, the per-layer copies it replaced), then in
#     chunks (the default): the same-machine comparison docs/measurements/2026-11-28-h200-blocks
#     could not make.
#  b. qwen-b32 with both engines on the final KV cache (call 2 there ran the per-layer cache).
# One H200, at most 9 min 30 s (qwen-b4 took 124-140 s a run there, qwen-b32 both engines 161 s).
#   OUT=dir bash benchmarks/sessions/gpu_session_h200_next.sh
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_h200_next.sh}
. benchmarks/deadline.sh
begin_session b4-per-layer b4-chunks b32
DEADLINE=$((start + 570))
step a1 190 "$OUT/b4-per-layer.txt" "$OUT/b4-per-layer.txt" env INFERCOMP_FAST_REORDER_MB=0 \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/b4-per-layer" --parts qwen --engines fast --only qwen-b4
step a2 160 "$OUT/b4-chunks.txt" "$OUT/b4-chunks.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/b4-chunks" --parts qwen --engines fast --only qwen-b4
step b 200 "$OUT/b32.txt" "$OUT/b32.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/b32" --parts qwen --engines fast,transformers --only qwen-b32
cat "$OUT/session.txt"
grep -hE "^\| qwen|^== " "$OUT"/b4-per-layer.txt "$OUT"/b4-chunks.txt "$OUT"/b32.txt | cut -c1-300
