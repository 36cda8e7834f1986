#!/usr/bin/env bash
# The top-p draw pass and bf16 greedy logits: their batch-32 profile against the previous draw, the
# issue's benchmark on the fast engine, and the GPU tests of the changed paths; one H100, one call
# of at most 9 min 20 s.
#   OUT=dir bash benchmarks/sessions/gpu_session_draw.sh
#  a. Qwen3-4B batch 32, greedy then nucleus: defaults (the draw pass, the softmax compiled from
#     bf16 logits); the previous draw (mask, product, quotient and argmax as eager kernels:
#     draw-off); attention at 32 slots a step and 2 warps (the attention benchmark's best at 32 rows)
#  b. benchmarks/fast_engine.py --parts qwen --engines fast
#  c. GPU tests: the draw pass, the top-p search, bf16 agreement of both engines
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_draw.sh}
. benchmarks/deadline.sh
begin_session p32
DEADLINE=$((start + 560))
step a 150 "$OUT/profile-32.txt" "$OUT/profile-32.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p32" --cases 32g,32s \
  --variants draw-off,attend-many-32+attend-warps-2
step b 320 "$OUT/bench.txt" "$OUT/bench.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/bench" --parts qwen --engines fast
step c 90 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  "$PYTHON" -m pytest -v -x --tb=short -m gpu -p no:cacheprovider tests/test_fast_engine_gpu.py \
  -k "top_p or bf16_agreement"
cat "$OUT/session.txt"; grep -h "^variant\|decode step" "$OUT"/profile-*.txt | cut -c1-40,200-400
grep -hE "Error|error:" "$OUT"/profile-*.txt | head -5
grep -hE "^\| qwen|^== " "$OUT/bench.txt"; grep -A 30 "Speculative mechanism" "$OUT/bench.txt" | head -40
grep -hE "PASSED|FAILED|SKIPPED|^E " "$OUT"/pytest_gpu.txt | head -20
