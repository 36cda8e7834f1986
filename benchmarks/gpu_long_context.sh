#!/usr/bin/env bash
# The long_context preset (about 3,900-token prompts, Qwen3-4B random weights) on the fast engine,
# per KV-cache kind: the model dtype (bf16), int8 and fp8 codes with their scales, offloaded (host
# memory; its bytes are host + device, kv_device_bytes the device part).
#  1. kv_cache_kinds.py: one batch-16 greedy call per kind; the cache's measured bytes (its
#     tensors), the formula beside them, the weights' bytes, the step time.
#  2. maxbatch: the largest batch of `batched` per kind (NEW new tokens, default 16; every row
#     runs to the limit), one model load per kind. The search starts where the cache alone fills
#     the free memory and tries a few sizes near the answer, each a new shape: it runs with
#     INFERCOMP_FAST_EAGER=1 (no compiling or capture per size; the cache, the largest cost per
#     row, is the same tensors either way). PROBE_TOKENS=512 probes with prompts cut to 512 tokens
#     in the cache sized for the full ones, then runs the size found with the full prompts
#     (maxbatch --probe-tokens). Each probe prints its line (size, fits, seconds) to
#     $OUT/maxbatch_<kind>.err as it finishes; the result goes to $OUT/maxbatch_<kind>.txt.
# Step 1 runs eagerly too (its step times are eager ones, labelled so in "compile"); SPEED=1 adds
# the model-dtype, int8 and offloaded kinds compiled and captured (long_context_speed.jsonl: the step
# time per kind; each kind compiles its prefill and decode shapes first, a minute or two each).
# The offloaded cache's rows are bounded by pinned host memory, not the GPU: no maxbatch for it here.
# fp8 holds the same bytes as int8; its maxbatch runs with FP8=1. REF=1 adds the reference
# engine's kinds (dynamic, quanto's quantized) through maxbatch beside them.
# Usage (repository root, GPU machine, src/ on PYTHONPATH or infercomp installed):
#   OUT=/some/dir bash benchmarks/gpu_long_context.sh
# BYTES=0 skips step 1; DEADLINE (epoch seconds) shortens or skips searches that would pass it.
# Writes $OUT/long_context_kv.jsonl (one JSON object per kind), $OUT/maxbatch.txt (a line per
# search), $OUT/maxbatch_<kind>.txt / .err, $OUT/stderr.txt; straight into files, no pipes.
set -u
OUT=${OUT:-results/gpu_long_context}
mkdir -p "$OUT"
PY=${PYTHON:-python}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"  # this tree, whatever is installed
. "$(dirname "$0")/deadline.sh"
LIMIT=${LIMIT:-256}       # largest batch maxbatch tries (int8 is expected near 200 on an 80 GB card)
SECONDS_EACH=${SECONDS_EACH:-200}  # per maxbatch search
NEW=${NEW:-16}
"$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" >> "$OUT/maxbatch.txt" 2>&1
if [ "${BYTES:-1}" = 1 ]; then
  INFERCOMP_FAST_EAGER=${BYTES_EAGER:-1} timeout "${KINDS_SECONDS:-200}" "$PY" benchmarks/kv_cache_kinds.py --config long_context \
    --rows 16 --new 16 --kinds model,int8,fp8,offloaded --out "$OUT/long_context_kv.jsonl" 2>>"$OUT/stderr.txt"
  [ $? = 124 ] && echo "kv_cache_kinds.py: over ${KINDS_SECONDS:-200} s" >> "$OUT/maxbatch.txt"
fi
kinds="static quantized"
[ "${FP8:-0}" = 1 ] && kinds="$kinds fp8"
probe=""
[ -n "${PROBE_TOKENS:-}" ] && probe="--probe-tokens $PROBE_TOKENS"
for kind in $kinds; do
  case $kind in
    static) sets="--set cache_implementation=static" ;;
    quantized) sets="--set cache_implementation=quantized --set kv_cache_dtype=int8" ;;
    fp8) sets="--set cache_implementation=quantized --set kv_cache_dtype=fp8" ;;
  esac
  cap=$(seconds_for "$SECONDS_EACH")
  if [ "$cap" = 0 ]; then
    echo "== long_context maxbatch, fast engine, $kind: skipped, the session's time ran out" >> "$OUT/maxbatch.txt"
    continue
  fi
  INFERCOMP_FAST_EAGER=1 timeout "$cap" "$PY" -m infercomp.cli maxbatch long_context --set engine=fast $sets \
    --set max_new_tokens="$NEW" --limit "$LIMIT" $probe > "$OUT/maxbatch_$kind.txt" 2> "$OUT/maxbatch_$kind.err"
  rc=$?
  result=$(grep -h '"max_batch_size"' "$OUT/maxbatch_$kind.txt")
  [ $rc = 124 ] && result="FAILED: over ${cap}s; the probes that finished: $(grep -c '^maxbatch: batch' "$OUT/maxbatch_$kind.err")"
  echo "== long_context maxbatch, fast engine, $kind (rc $rc): $result" >> "$OUT/maxbatch.txt"
  tail -n 1 "$OUT/maxbatch.txt"
done
if [ "${SPEED:-0}" = 1 ]; then
  timeout 400 "$PY" benchmarks/kv_cache_kinds.py --config long_context --rows 16 --new 32 --kinds model,int8,offloaded \
    --out "$OUT/long_context_speed.jsonl" 2>>"$OUT/stderr.txt"
  [ $? = 124 ] && echo "kv_cache_kinds.py (captured): over 400 s" >> "$OUT/maxbatch.txt"
fi
if [ "${REF:-0}" = 1 ]; then
  for setting in "cache_implementation=dynamic" "cache_implementation=quantized"; do
    echo "== long_context maxbatch, reference engine, $setting" >> "$OUT/maxbatch.txt"
    timeout "$SECONDS_EACH" "$PY" -m infercomp.cli maxbatch long_context --set engine=transformers --set "$setting" \
      --set max_new_tokens=16 --limit "$LIMIT" >> "$OUT/maxbatch.txt" 2>>"$OUT/stderr.txt"
  done
fi
echo "done: $OUT"
