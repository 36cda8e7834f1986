#!/usr/bin/env bash
# A record of call 1 (docs/measurements/2026-11-28-h100-draw/call-1): the tail it measured lost and was removed, with its tail-off variant.
# The attention kernel's launch settings alone, Nsight Compute on it, and the batch-32 step with the
# down product's parts left to the next layer; one H100, one call of at most 8 min 30 s.
#   OUT=dir bash benchmarks/sessions/gpu_session_tail.sh
#  a. benchmarks/attend_bench.py: fresh_kernel at Qwen3-4B's shapes, 1 and 32 rows, 96 and 160
#     cached slots, slots a step x warps x pipelining stages
#  b. Nsight Compute on one launch of the default setting at 32 rows, 160 slots
#  c. Qwen3-4B batch 32, greedy then nucleus: defaults (the tail left to the next layer, greedy
#     logits in bf16); each layer adding its own down product (tail-off); attention with 1 and 2
#     pipelining stages, 8 warps, 32 slots a step
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_tail.sh}
. benchmarks/deadline.sh
begin_session attend p32
DEADLINE=$((start + 505))
step a 150 "$OUT/attend/log.txt" "$OUT/attend/log.txt" \
  "$PYTHON" benchmarks/attend_bench.py --out "$OUT/attend"
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
step b 70 "$OUT/attend/ncu.txt" "$OUT/attend/ncu.txt" \
  "$NCU" --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
  --section MemoryWorkloadAnalysis --section SchedulerStats -k regex:fresh_kernel -c 1 \
  "$PYTHON" benchmarks/attend_bench.py --ncu
step c 280 "$OUT/profile-32.txt" "$OUT/profile-32.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p32" --cases 32g,32s \
  --variants tail-off,attend-stages-1,attend-stages-2,attend-warps-8,attend-many-32
cat "$OUT/session.txt"; grep -h "^variant\|decode step" "$OUT"/profile-*.txt | cut -c1-40,200-400
grep -hE "Error|error:" "$OUT"/profile-*.txt | head -5
sort -t: -k2 "$OUT/attend/attend_bench.txt" 2>/dev/null | head -3
