#!/usr/bin/env bash
# A record of call 2 (docs/measurements/2026-11-28-h100-partials/call-2): its attend-v-late variant measured the same as the kept order and was removed.
# (Its partials-rows-2 variant is the default since and was removed from profile_fast_step.)
# The new defaults (o and down in float32 parts at 16-64 rows; the attention's values loaded with
# its keys; 64 slots a step where the programs outnumber the SMs) against each one off, and the
# GPU tests of the changed code; one H100, one call of at most 9 min 15 s.
#   OUT=dir bash benchmarks/sessions/gpu_session_partials2.sh
#  a. Qwen3-4B batch 1, 4 and 32 greedy: defaults; values loaded after the softmax (attend-v-late);
#     128 slots at 32 rows (attend-many-128); no partial products (partials-off); partial
#     products from 2 rows (partials-rows-2)
#  b. GPU tests: partial products on CUDA, the bf16 fused attention block at 128 and 64 slots,
#     bf16 agreement of both engines (its speculative verify block of 40 rows takes the parts)
#  c. tests/test_gpu.py's memory and energy test, with what time is left
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_partials2.sh}
. benchmarks/deadline.sh
begin_session p4
DEADLINE=$((start + 555))
"$PYTHON" -c "import torch, triton, transformers; print('torch', torch.__version__, 'triton', triton.__version__, 'transformers', transformers.__version__)" >> "$OUT/session.txt" 2>&1
step a 330 "$OUT/profile-4b.txt" "$OUT/profile-4b.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p4" --cases 1g,4g,32g \
  --variants attend-v-late,attend-many-128,partials-off,partials-rows-2
step b 150 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  "$PYTHON" -m pytest -v -x -m gpu -p no:cacheprovider tests/test_fast_products.py tests/test_fast_engine_gpu.py \
  -k "on_the_gpu or fused_attention_block or bf16_agreement"
step c 120 "$OUT/test_gpu.txt" "$OUT/test_gpu.txt" \
  "$PYTHON" -m pytest -v -x -l --tb=short -m gpu -p no:cacheprovider "tests/test_gpu.py::test_cuda_memory_peaks_and_nvml_energy"
cat "$OUT/session.txt"; grep -h "^variant\|decode step" "$OUT"/profile-*.txt
grep -hE "Error|error:" "$OUT"/profile-*.txt | head -8
grep -hE "PASSED|FAILED|SKIPPED|^E |agreement" "$OUT"/pytest_gpu.txt "$OUT"/test_gpu.txt | head -30
