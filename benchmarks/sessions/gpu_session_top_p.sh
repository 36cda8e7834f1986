#!/usr/bin/env bash
# A record of call 4 (docs/measurements/2026-11-28-h100-partials/call-4): its top-p-resum variant lost and was removed.
# The top-p search's passes at 32 rows, and the energy test; one H100, one call of at most 6 min 40 s.
#   OUT=dir bash benchmarks/sessions/gpu_session_top_p.sh
#  a. Qwen3-4B batch 32, greedy then nucleus (T 0.8, top-p 0.9): defaults (each pass reads the
#     threshold so far from the pass before and sums only that pass's masses); every pass summing
#     all earlier masses again (top-p-resum, the previous code); 512-token blocks; chunks of
#     2,048 and 8,192 tokens; 8 warps
#  b. tests/test_gpu.py's memory and energy test (6 x 512 fixed-length tokens)
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_top_p.sh}
. benchmarks/deadline.sh
begin_session p32
DEADLINE=$((start + 395))
step a 210 "$OUT/profile-32.txt" "$OUT/profile-32.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p32" --cases 32g,32s \
  --variants top-p-resum,top-p-block-512,top-p-chunk-2048,top-p-chunk-8192,top-p-warps-8
step b 190 "$OUT/test_gpu.txt" "$OUT/test_gpu.txt" \
  "$PYTHON" -m pytest -v -x -l --tb=short -m gpu -p no:cacheprovider "tests/test_gpu.py::test_cuda_memory_peaks_and_nvml_energy"
cat "$OUT/session.txt"; grep -h "^variant\|decode step" "$OUT"/profile-*.txt | cut -c1-40,200-400
grep -hE "Error|error:" "$OUT"/profile-*.txt | head -5
grep -hE "PASSED|FAILED|SKIPPED|^E " "$OUT"/test_gpu.txt | head -10
