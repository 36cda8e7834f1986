#!/usr/bin/env bash
# Every GPU-marked test on one H100 at the current commit, one call of at most 9 min 40 s. From the
# repository root:   OUT=dir bash benchmarks/sessions/gpu_session_checks.sh
#  a. tests/test_fast_kvcache_gpu.py: the offloaded and one-byte caches against the device cache
#  b. tests/test_gpu.py: CUDA-event clock, memory peaks and energy, bf16 speculative agreement,
#     the static cache compiling only in warm-up
#  c. tests/test_fast_engine_gpu.py: float32 greedy / speculative / beams against the reference,
#     bf16 agreement, top-p kernels, packed weights
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_checks.sh}
. benchmarks/deadline.sh
begin_session
DEADLINE=$((start + 578))
for f in test_fast_kvcache_gpu test_gpu test_fast_engine_gpu; do
  step "$f" 300 "$OUT/$f.txt" "$OUT/$f.txt" "$PYTHON" -m pytest -v -m gpu -p no:cacheprovider "tests/$f.py"
done
cat "$OUT/session.txt"; grep -hE "passed|failed|PASSED|FAILED|SKIPPED|ERROR" "$OUT"/test_*.txt
