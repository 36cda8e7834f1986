#!/usr/bin/env bash
# A record of call 1 (docs/measurements/2026-11-28-h100-partials/call-1): its residual-o-down variant lost and was removed.
# (Its partials-o4-down4 variant is the default since and was removed from profile_fast_step.)
# Batch-32 products without cuBLAS's split-K reduction kernels, and the draft ratio on one machine;
# one H100, one call of at most 9 min 15 s, every comparison within one process.
#   OUT=dir bash benchmarks/sessions/gpu_session_partials.sh
#  a. Qwen3-4B batch 32 greedy: defaults (128 attention slots a step, never measured at 32 rows);
#     o / down / gate|up / q|k|v as float32 partial products summed by the compiled kernel after
#     them (fast.products.PARTIALS); the residual added by cuBLAS (CUBLAS_RESIDUAL); 64 slots
#  b. Qwen3-0.6B batch 1 (the draft step), defaults
#  c. Qwen3-4B batch 1, defaults: with b, both models' steps from one machine
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_partials.sh}
. benchmarks/deadline.sh
begin_session p32 p06 p4
DEADLINE=$((start + 555))
"$PYTHON" -c "import torch, triton, transformers; print('torch', torch.__version__, 'triton', triton.__version__, 'transformers', transformers.__version__)" >> "$OUT/session.txt" 2>&1
step a 310 "$OUT/profile-32.txt" "$OUT/profile-32.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p32" --cases 32g \
  --variants partials-o4-down4,partials-o2-down4,residual-o-down,partials-o4-down4+partials-gate_up2,partials-o4-down8,attend-block-64,partials-qkv2
step b 110 "$OUT/profile-0.6b.txt" "$OUT/profile-0.6b.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p06" --model Qwen/Qwen3-0.6B --cases 1g
step c 130 "$OUT/profile-4b.txt" "$OUT/profile-4b.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p4" --cases 1g
cat "$OUT/session.txt"; grep -h "^variant\|decode step" "$OUT"/profile-*.txt
grep -hE "Error|error:" "$OUT"/profile-*.txt | head -8
