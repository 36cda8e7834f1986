#!/usr/bin/env bash
# One GPU call for the quantization work, inside ten minutes on one H100: the long_context preset's
# KV-cache kinds (measured bytes; maxbatch per kind), then the weight-quantization kernels on the
# fast engine (bf16 first as the baseline). Usage: benchmarks/sessions/gpu_session_quant.sh OUT
set -u
out=${1:?usage: benchmarks/sessions/gpu_session_quant.sh OUT}
mkdir -p "$out/long" "$out/quant"
export PYTHONUNBUFFERED=1 PYTHON=python3
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
OUT="$out/long" KINDS_SECONDS=${KINDS_SECONDS:-130} SECONDS_EACH=${SECONDS_EACH:-100} LIMIT=${MAXBATCH_LIMIT:-256} bash benchmarks/gpu_long_context.sh 2>&1 | tail -n 30
OUT="$out/quant" LIMIT=${QUANT_LIMIT:-75} FAST=${FAST:-"none int8-weight-only int4-tile-packed int4-plain int4-preshuffled fp8-dynamic-row"} \
  REF="" INDUCTOR="" bash benchmarks/gpu_quantization.sh 2>&1 | tail -n 20
