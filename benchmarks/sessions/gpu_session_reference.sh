#!/usr/bin/env bash
# The attention's many-programs setting against the previous one, and the reference engine's rows of
# the benchmark beside the fast engine's; one H100, one call of at most 9 min 25 s.
#   OUT=dir bash benchmarks/sessions/gpu_session_reference.sh
#  a. Qwen3-4B batch 32, greedy then nucleus: defaults (32 attention slots a step, 2 warps, where
#     the programs outnumber the SMs); the previous setting (64 slots, 4 warps)
#  b. the bf16 fused attention block on the GPU, few and many programs
#  c. benchmarks/fast_engine.py --only qwen-b32, both engines in one run
#  d. the reference engine's qwen-b4 and qwen-spec rows (the fast engine's: the call before)
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_reference.sh}
. benchmarks/deadline.sh
begin_session p32
DEADLINE=$((start + 565))
step a 120 "$OUT/profile-32.txt" "$OUT/profile-32.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p32" --cases 32g,32s \
  --variants attend-many-64+attend-many-warps-4
step b 60 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  "$PYTHON" -m pytest -v -x --tb=short -m gpu -p no:cacheprovider tests/test_fast_engine_gpu.py -k "fused_attention"
step c 140 "$OUT/bench-b32.txt" "$OUT/bench-b32.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/b32" --parts qwen --engines fast,transformers --only qwen-b32
step d 170 "$OUT/bench-b4.txt" "$OUT/bench-b4.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/b4" --parts qwen --engines transformers --only qwen-b4
step e 170 "$OUT/bench-spec.txt" "$OUT/bench-spec.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/spec" --parts qwen --engines transformers --only qwen-spec
cat "$OUT/session.txt"; grep -h "^variant\|decode step" "$OUT"/profile-*.txt | cut -c1-40,200-400
grep -hE "Error|error:" "$OUT"/profile-*.txt | head -5
grep -hE "^\| qwen|^== " "$OUT"/bench-*.txt
grep -hE "PASSED|FAILED|SKIPPED|^E " "$OUT"/pytest_gpu.txt | head -10
