#!/usr/bin/env bash
# Each layer computes the norm after it, with its closing residual add in one compiled kernel
# (fast.model NORM_CHAIN): the engines' GPU tests that cover it, the step at batch 32, 4 and 1
# against the variant without it, then the batch-32 benchmark on both engines; one H100,
# at most 6 min 30 s.
#   OUT=dir bash benchmarks/sessions/gpu_session_chain.sh
#  a. GPU tests: float32 greedy and speculative against the reference, bf16 agreement
#  b. Qwen3-4B batch 32, 4 and 1, greedy: defaults; norm-chain-off
#  c. benchmarks/fast_engine.py, Qwen3-4B batch 32, both engines
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_chain.sh}
. benchmarks/deadline.sh
begin_session p32 bench
DEADLINE=$((start + 390))
step a 130 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  "$PYTHON" -m pytest -v --tb=short -m gpu -p no:cacheprovider tests/test_fast_engine_gpu.py \
  -k "float32_greedy or bf16_agreement"
step b 140 "$OUT/profile.txt" "$OUT/profile.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p32" --cases 32g,4g,1g --variants norm-chain-off
step c 120 "$OUT/bench/log.txt" "$OUT/bench/log.txt" \
  "$PYTHON" benchmarks/fast_engine.py --parts qwen --engines fast,transformers --only qwen-b32 --out "$OUT/bench"
cat "$OUT/session.txt"; grep -h "^variant\|decode step" "$OUT"/profile.txt | cut -c1-40,200-400
grep -h "^kernels per step\|^device time" "$OUT"/p32/*.txt
grep -hE "Error|error:" "$OUT"/profile.txt | head -5
grep -hE "PASSED|FAILED|SKIPPED|^E |passed|failed" "$OUT"/pytest_gpu.txt | head -12
tail -12 "$OUT/bench/log.txt"
