#!/usr/bin/env bash
# Prepared for the next GPU session, not yet run: what this session's device time did not cover.
# The engines' whole GPU test file (bf16 agreement with the norm chain, the kernels' checks), the
# norm chain against its absence in one process at batch 32 and 4, and the speculative workload
# on the final code; one H100, at most 9 min 20 s. Then, in a second call,
# benchmarks/sessions/gpu_session_rows_bench.sh repeats the benchmark.
#   OUT=dir bash benchmarks/sessions/gpu_session_validate.sh
#  a. tests/test_fast_engine_gpu.py, every test
#  b. Qwen3-4B batch 32 and 4, greedy: defaults; norm-chain-off
#  c. benchmarks/fast_engine.py, the speculative workload, fast engine
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_validate.sh}
. benchmarks/deadline.sh
begin_session p32 spec
DEADLINE=$((start + 560))
step a 240 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  "$PYTHON" -m pytest -v --tb=short -m gpu -p no:cacheprovider tests/test_fast_engine_gpu.py
step b 200 "$OUT/profile.txt" "$OUT/profile.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p32" --cases 32g,4g --variants norm-chain-off
step c 120 "$OUT/spec.txt" "$OUT/spec.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/spec" --parts qwen --engines fast --only qwen-spec
cat "$OUT/session.txt"; grep -h "^variant\|decode step" "$OUT"/profile.txt | cut -c1-40,200-400
grep -hE "PASSED|FAILED|SKIPPED|^E |passed|failed" "$OUT"/pytest_gpu.txt | tail -30
grep -hE "^\| qwen|^== " "$OUT/spec.txt"; grep -A 30 "Speculative mechanism" "$OUT/spec.txt" | head -34
