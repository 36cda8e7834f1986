#!/usr/bin/env bash
# Two GPU studies in one call (usage: benchmarks/gpu_measure_and_speculate.sh OUTDIR):
# 1. Measurements on random-weight Qwen3-4B: repeats, TTFT, inter-token latency, roofline share,
#    energy, each method in its own process (the GPU default).
# 2. batched_speculative vs batched at batch 1, 4 and 8: on the embedded pair (drafts agree) and
#    on random-weight Qwen3-4B + Qwen3-0.6B (random drafts are rejected: that measures only what
#    drafting and verifying cost).
# Then a summary table of the key figures (benchmarks/summarize.py).
set -euo pipefail
out=${1:-bench-out}
run() { python3 -m infercomp.cli run "$@" --quiet; }

run example --output-dir "$out/qwen3-4b-measure" --set load_format='"random"' \
  --set num_completions=2 --set max_new_tokens=64 --set repeats=3

for b in 1 4 8; do
  run example --embedded --output-dir "$out/spec-embedded-b$b" --set 'prompts=["Once upon a time"]' \
    --set num_completions=8 --set batch_size=$b --set max_new_tokens=128 --set temperature=0 \
    --set 'methods_to_test=["batched","batched_speculative"]' --set repeats=3 --set isolation='"none"'
  run example --output-dir "$out/spec-qwen3-random-b$b" --set load_format='"random"' \
    --set 'prompts=["Once upon a time"]' --set num_completions=8 --set batch_size=$b --set max_new_tokens=32 \
    --set temperature=0 --set 'methods_to_test=["batched","batched_speculative"]' --set repeats=1 \
    --set num_assistant_tokens=2 --set isolation='"none"'
done
python3 benchmarks/summarize.py "$out"
