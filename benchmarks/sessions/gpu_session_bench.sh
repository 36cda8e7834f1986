#!/usr/bin/env bash
# The benchmark on the fast engine with the final defaults, then the GPU tests not yet run
# on this code; one H100, one call of at most 9 min 20 s.
#   OUT=dir bash benchmarks/sessions/gpu_session_bench.sh
#  a. benchmarks/fast_engine.py --parts qwen --engines fast: Qwen3-4B (+ Qwen3-0.6B draft), random
#     bf16 weights, 32-token prompt, 128 forced new tokens; standard, batched, nucleus, beam search
#     at batch 4, standard and standard_speculative (k = 4) at batch 1, batched and nucleus at 32
#  b. tests/test_gpu.py's memory and energy test (6 x 512 fixed-length tokens now)
#  c. the float32 int4 packed weights against the reference engine
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_bench.sh}
. benchmarks/deadline.sh
begin_session
DEADLINE=$((start + 560))
step a 430 "$OUT/bench.txt" "$OUT/bench.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/bench" --parts qwen --engines fast
step b 70 "$OUT/test_gpu.txt" "$OUT/test_gpu.txt" \
  "$PYTHON" -m pytest -v -x -l --tb=short -m gpu -p no:cacheprovider "tests/test_gpu.py::test_cuda_memory_peaks_and_nvml_energy"
step c 120 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  "$PYTHON" -m pytest -v -x --tb=short -m gpu -p no:cacheprovider tests/test_fast_engine_gpu.py -k "packed_weights_match and int4"
cat "$OUT/session.txt"; grep -hE "^\| qwen|^== " "$OUT/bench.txt"; grep -A 30 "Speculative mechanism" "$OUT/bench.txt" | head -40
grep -hE "PASSED|FAILED|SKIPPED|^E " "$OUT"/test_gpu.txt "$OUT"/pytest_gpu.txt | head -20
