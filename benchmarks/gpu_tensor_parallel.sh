#!/usr/bin/env bash
# Tensor parallel on one host, random bf16 weights (no download; built on the meta device, each
# rank's shard materialised on its GPU), `standard` (8 calls of 1 row) and `batched` (1 call of 8
# rows), a 32-token prompt, MAX_NEW tokens each (fixed length), 1 warm-up call, 2 repeats:
#   - Qwen3-32B (65.5 GB): tensor parallel 2 on GPUs 0,1 against the same model on GPU 0 alone
#     (needs 2 GPUs of 80 GB);
#   - Llama-3.1-70B (141 GB, fits no single GPU): tensor parallel 4 (needs 4 GPUs).
# What the visible GPUs cannot hold is skipped and said so. Raw results.json / report.md per run
# under OUT, machine and versions in OUT/machine.txt, a summary table at the end (and in
# OUT/summary.md). Run from the repository root: benchmarks/gpu_tensor_parallel.sh [OUT] [all|qwen|llama]
# (qwen / llama: only that part, e.g. to keep one command short; RUN_TIMEOUT seconds per run, 480).
set -uo pipefail
# NVLink multicast (NVLS) stays off unless the caller sets otherwise: all-reduce uses NCCL's
# ring/tree algorithms, as on hosts without NVSwitch multicast.
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0} TORCH_SYMM_MEM_DISABLE_MULTICAST=${TORCH_SYMM_MEM_DISABLE_MULTICAST:-1}
export NVSHMEM_DISABLE_NVLS=${NVSHMEM_DISABLE_NVLS:-1}
out=${1:-${OUT:-bench-out}}
part=${2:-all}
max_new=${MAX_NEW:-32}
cfg=benchmarks/tensor_parallel.json
mkdir -p "$out"
gpus=$(python3 -c "import torch; print(torch.cuda.device_count())")
{
  echo "date: $(date -u +%FT%TZ)"; echo "visible GPUs: $gpus"
  env | grep -E '^(NCCL_|TORCH_SYMM|NVSHMEM_|CUDA_VISIBLE)' | sort
  nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader || true
  nvidia-smi topo -m || true
  python3 -c "import torch, transformers, accelerate; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'nccl', torch.cuda.nccl.version(), 'transformers', transformers.__version__, 'accelerate', accelerate.__version__)"
} > "$out/machine.txt" 2>&1
cat "$out/machine.txt"

run() {  # NAME GPU_LIST SIZE MODEL
  local name=$1 devices=$2 size=$3 model=$4 start=$SECONDS
  echo "== $name: $model, tensor_parallel_size $size on GPUs $devices"
  CUDA_VISIBLE_DEVICES=$devices timeout "${RUN_TIMEOUT:-480}" \
    python3 -m infercomp.cli run "$cfg" --quiet --output-dir "$out/$name" \
    --set main_model="$model" --set tensor_parallel_size="$size" --set max_new_tokens="$max_new" \
    > "$out/$name.log" 2>&1
  local code=$?
  tail -n 25 "$out/$name.log"
  echo "== $name: exit $code after $((SECONDS - start)) s"
}

if [ "$part" = llama ]; then
  :
elif [ "$gpus" -ge 2 ]; then
  run qwen3-32b-tp2 0,1 2 Qwen/Qwen3-32B
  run qwen3-32b-tp1 0 1 Qwen/Qwen3-32B
else
  echo "skipped: Qwen3-32B tensor parallel 2 needs 2 GPUs; $gpus visible" | tee -a "$out/skipped.txt"
fi
if [ "$part" = qwen ]; then
  :
elif [ "$gpus" -ge 4 ]; then
  run llama-3.1-70b-tp4 0,1,2,3 4 meta-llama/Llama-3.1-70B
else
  echo "skipped: Llama-3.1-70B tensor parallel 4 needs 4 GPUs; $gpus visible" | tee -a "$out/skipped.txt"
fi
python3 benchmarks/tensor_parallel_summary.py "$out" | tee "$out/summary.md"
