#!/usr/bin/env bash
# The fourth call of the 2026-11-28 H200 session, on the machine of the third while it was still
# held (the same GPU), with the 247 s of device time left: the speculative workload with the block
# kernel off, so the verify pass's attention takes the unfused path. It ran as this one command:
#   env INFERCOMP_FAST_BLOCK_ATTENTION=0 timeout 240 python3 benchmarks/fast_engine.py \
#     --out $OUT/spec-unfused --parts qwen --engines fast --only qwen-spec
# (the first call's unfused run, gpu_session_blocks.sh step b1, ran out of its 165 s compiling).
#   OUT=dir bash benchmarks/sessions/gpu_session_h200_unfused.sh
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_h200_unfused.sh}
. benchmarks/deadline.sh
begin_session spec-unfused
step b 240 "$OUT/spec-unfused.txt" "$OUT/spec-unfused.txt" env INFERCOMP_FAST_BLOCK_ATTENTION=0 \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/spec-unfused" --parts qwen --engines fast --only qwen-spec
cat "$OUT/session.txt"; tail -25 "$OUT/spec-unfused.txt"
