#!/usr/bin/env bash
# One GPU session's checks, from the repository root on a machine with one CUDA GPU:
#   1. the GPU test suite (pytest -m gpu): clocks against CUDA events, memory peaks, energy,
#      the fast engine against the reference in float32 and its bf16 agreement;
#   2. the embedded pair on both engines (benchmarks/fast_engine.py --parts embedded): measured
#      speculative speedup next to the predicted one;
#   3. profiles of the fast engine's decode step (Qwen3-4B random weights): batch 1 and 32
#      greedy, batch 32 nucleus sampling.
# Usage: benchmarks/gpu_checks.sh OUT   (writes OUT/gpu-tests.txt, OUT/embedded/, OUT/profiles/)
set -uo pipefail
out=${1:?usage: benchmarks/gpu_checks.sh OUT}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python3 -m pytest -q -m gpu -p no:cacheprovider tests/ 2>&1 | tee "$out/gpu-tests.txt"
# The embedded pair is launch-bound: the block-size search buys nothing there and triples compile time.
INFERCOMP_FAST_TUNING=0 python3 benchmarks/fast_engine.py --out "$out/embedded" --parts embedded 2>&1 \
  | grep -v "Loading weights" | tee "$out/embedded.log"
for args in "--rows 1" "--rows 32" "--rows 32 --sample"; do
  # shellcheck disable=SC2086
  python3 benchmarks/profile_fast_step.py --out "$out/profiles" $args 2>&1 | grep -v "Loading weights" | tail -n 30
done
