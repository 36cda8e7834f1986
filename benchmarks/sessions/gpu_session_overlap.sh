#!/usr/bin/env bash
# The attention's programs start while q|k|v's product runs (fast/rows_kernel.py TRIGGER) and ask
# L2 for their cached keys and values before they wait for it (fast/attend_kernel.py PREFETCH):
# its GPU tests, the step at batch 32, 4 and 1 against each switch off, then the batch-32
# benchmark on both engines; one H100, at most 9 min 10 s.
#   OUT=dir bash benchmarks/sessions/gpu_session_overlap.sh
#  a. GPU tests: fused attention block, few-row kernels, bf16 agreement of both engines
#  b. Qwen3-4B batch 32, 4 and 1, greedy: defaults; early-off; prefetch-off; both off
#  c. benchmarks/fast_engine.py, Qwen3-4B batch 32, both engines
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_overlap.sh}
. benchmarks/deadline.sh
begin_session p32 bench
DEADLINE=$((start + 550))
step a 100 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  "$PYTHON" -m pytest -v --tb=short -m gpu -p no:cacheprovider tests/test_fast_engine_gpu.py \
  -k "few_row or bf16_agreement or fused_attention"
step b 260 "$OUT/profile.txt" "$OUT/profile.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p32" --cases 32g,4g,1g \
  --variants early-off,prefetch-off,early-off+prefetch-off
step c 170 "$OUT/bench/log.txt" "$OUT/bench/log.txt" \
  "$PYTHON" benchmarks/fast_engine.py --parts qwen --engines fast,transformers --only qwen-b32 --out "$OUT/bench"
cat "$OUT/session.txt"; grep -h "^variant\|decode step" "$OUT"/profile.txt | cut -c1-40,200-400
grep -hE "Error|error:" "$OUT"/profile.txt | head -5
grep -hE "PASSED|FAILED|SKIPPED|^E " "$OUT"/pytest_gpu.txt | head -12
tail -25 "$OUT/bench/log.txt"
