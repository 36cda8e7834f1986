#!/usr/bin/env bash
# How much the fast engine's decode step varies between compilations, per block-size search
# setting (INFERCOMP_FAST_TUNING, see src/infercomp/fast/runtime.py). Every run is a fresh process
# with an empty compiler cache, as on a user's first run; each writes its profile file (kernels of
# the captured step, CUDA-event step times) and its log under OUT.
# Usage (repository root, one CUDA GPU): benchmarks/gpu_tuning_spread.sh OUT [RUN ...]
#   RUN: tag:tuning:model:cases[:cublas], e.g. thorough1:thorough:Qwen/Qwen3-4B:1g,32g,32s
set -u
out=${1:?usage: benchmarks/gpu_tuning_spread.sh OUT [RUN ...]}
shift
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
python3 -c "import torch, transformers, triton; print('torch', torch.__version__, 'transformers', transformers.__version__, \
'triton', triton.__version__, torch.cuda.get_device_name())" > "$out/versions.txt" 2>&1
SECONDS_EACH=${SECONDS_EACH:-150}
for run in "$@"; do
  IFS=: read -r tag tuning model cases cublas <<< "$run"
  cache=$(mktemp -d)  # empty compiler cache: the search runs again
  echo "== $tag (tuning $tuning, $model, $cases, cuBLAS for: ${cublas:-none}) $(date -u +%T)" >> "$out/runs.txt"
  TORCHINDUCTOR_CACHE_DIR=$cache INFERCOMP_FAST_TUNING=$tuning INFERCOMP_FAST_CUBLAS=${cublas:-} \
    timeout "$SECONDS_EACH" python3 benchmarks/profile_fast_step.py --out "$out" --model "$model" --cases "$cases" \
    --tag="-$tag" > "$out/log-$tag.txt" 2>&1
  echo "   exit $? $(date -u +%T)" >> "$out/runs.txt"
  grep -h "^model\|^device time\|^weights" "$out/log-$tag.txt" >> "$out/runs.txt"
done
