#!/usr/bin/env bash
# Weight quantization on the H100: Qwen3-4B random weights, batch 1, per-step decode time of every
# torchao recipe (each int4 layout is its own kernel) on the fast engine, and each kind's default
# recipe on the reference engine beside it. Every recipe runs in its own process under a time
# limit; failures are printed with their error, like the numbers.
# With LONG=1, then the long_context preset (about 3,900-token prompts, 16 new tokens) through
# `maxbatch` on the reference engine: the largest batch per KV-cache kind with bf16 weights, and
# with int4 weights (the fast engine's KV-cache kinds: benchmarks/gpu_long_context.sh).
# Usage (repository root, GPU machine, src/ on PYTHONPATH or infercomp installed):
#   OUT=/some/dir bash benchmarks/gpu_quantization.sh          # 18 runs, about a minute each
#   OUT=/some/dir LONG=1 bash benchmarks/gpu_quantization.sh   # plus the long-context search
# Writes $OUT/quant_kernels.jsonl (one JSON object per run), $OUT/quant_kernels.txt (the lines)
# and, with LONG=1, $OUT/long_context.txt.
# TABLE=both measures each int4 recipe with its token table in bf16, then with the int8 table
# (quant_kernels.py --table); DEADLINE (epoch seconds) shortens or skips runs that would pass it.
# Every run writes straight into the files (no pipes: a killed pipe would lose its buffer).
set -u
OUT=${OUT:-results/gpu_quantization}
mkdir -p "$OUT"
PY=${PYTHON:-python}
. "$(dirname "$0")/deadline.sh"
LIMIT=${LIMIT:-150}   # seconds per recipe: load + quantize + compile + 4 calls
TABLE=${TABLE:-int8}
log="$OUT/quant_kernels.txt"
"$PY" -c "import torch, torchao; print('torch', torch.__version__, 'torchao', torchao.__version__, torch.cuda.get_device_name())" >> "$log" 2>&1
# Override either list to spend less GPU time, e.g. FAST="none int8-weight-only int4-tile-packed fp8-dynamic-row"
FAST=${FAST-"none int8-weight-only int8-dynamic int4-tile-packed int4-tile-packed-hqq int4-plain int4-preshuffled int4-fp8-dynamic int4-intx fp8-weight-only fp8-dynamic-row fp8-dynamic-tensor"}
REF=${REF-"none int8-weight-only int4-tile-packed fp8-dynamic-row"}
INDUCTOR=${INDUCTOR-"int8-weight-only int4-tile-packed"}

one() {  # one() ENGINE RECIPE LABEL [env assignments...]: one quant_kernels.py process
  local engine=$1 recipe=$2 label=$3 cap
  shift 3
  cap=$(seconds_for "$LIMIT")
  if [ "$cap" = 0 ]; then
    echo "$engine $label skipped: the session's time ran out" >> "$log"
    return
  fi
  local before
  before=$(wc -l < "$log")
  local tables=$TABLE
  if [ "$TABLE" = both ]; then  # int4 kinds: a process per table kind (see quant_kernels.py)
    case $recipe in int4*) tables="none int8" ;; *) tables=int8 ;; esac
  fi
  for table in $tables; do
    env "$@" timeout "$cap" "$PY" benchmarks/quant_kernels.py --engine "$engine" --recipe "$recipe" --label "$label" \
      --table "$table" --out "$OUT/quant_kernels.jsonl" >> "$log" 2>>"$OUT/stderr.txt"
    [ $? = 124 ] && echo "$engine $label (table $table) FAILED: over ${cap}s" >> "$log"
  done
  tail -n +$((before + 1)) "$log"
}
for recipe in $FAST; do one fast "$recipe" "$recipe"; done
# torchao's own compiler settings (coordinate-descent tuning), off by default, on the two main recipes
for recipe in $INDUCTOR; do one fast "$recipe" "$recipe+inductor" INFERCOMP_QUANT_INDUCTOR=1; done
for recipe in $REF; do one transformers "$recipe" "$recipe"; done
if [ "${LONG:-0}" = 1 ]; then
  long="$OUT/long_context.txt"
  for setting in "cache_implementation=dynamic" "cache_implementation=quantized" \
                 "cache_implementation=offloaded" "quantization=int4"; do
    echo "== long_context maxbatch, reference engine, $setting" >> "$long"
    timeout 300 "$PY" -m infercomp.cli maxbatch long_context --set engine=transformers --set "$setting" \
      --set max_new_tokens=16 --limit 64 >> "$long" 2>>"$OUT/stderr.txt"
  done
fi
echo "done: $log"
