#!/usr/bin/env bash
# Where the fast engine's decode step spends its time on one GPU, with the compiler's block-size
# search off and on, and the reference engine's static-cache warm-up check.
# Usage (repository root, one CUDA GPU): benchmarks/gpu_profiles.sh OUT
set -uo pipefail
out=${1:?usage: benchmarks/gpu_profiles.sh OUT}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
INFERCOMP_GPU_OUT="$out" python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py -k static_cache -s 2>&1 \
  | grep -v DEBUG | tail -n 40 > "$out/static-cache-test.txt"
profile() { python3 benchmarks/profile_fast_step.py --out "$out" "$@" 2>&1 | grep -v "Loading weights" | head -n 4; }
INFERCOMP_FAST_TUNING=0 profile --cases 1g,4g,32g,4s,32s
INFERCOMP_FAST_TUNING=0 profile --model Qwen/Qwen3-0.6B --cases 1g
INFERCOMP_FAST_TUNING=1 profile --cases 1g,32s
INFERCOMP_FAST_TUNING=1 profile --model Qwen/Qwen3-0.6B --cases 1g
