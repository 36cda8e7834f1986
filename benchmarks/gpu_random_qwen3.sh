#!/usr/bin/env bash
# Real-size speed and memory without a download: the seed's Qwen3-4B (main) and Qwen3-0.6B
# (assistant) built from their published architectures with random weights, every method,
# speculative variants included. Random weights accept no drafts: speculative rows measure
# the mechanism's cost, not a speedup. Also the embedded pair on the same GPU, where drafts do
# agree. Usage: benchmarks/gpu_random_qwen3.sh OUTDIR
set -euo pipefail
out=${1:-bench-out}
python3 -m infercomp.cli run example --quiet --output-dir "$out/qwen3-4b-random" \
  --set load_format='"random"' --set use_speculative_decoding=true \
  --set num_completions=2 --set max_new_tokens=64
python3 -m infercomp.cli run comprehensive --embedded --quiet --output-dir "$out/embedded" \
  --set max_new_tokens=128 --set temperature=0
