#!/usr/bin/env bash
# The batch-32 products alone (benchmarks/gemm_bench.py), then the reference engine's qwen-spec rows
# of the benchmark (cut by its cap in the call before); one H100, one call of at most 6 min.
#   OUT=dir bash benchmarks/sessions/gpu_session_reference_spec.sh
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_reference_spec.sh}
. benchmarks/deadline.sh
begin_session gemm
DEADLINE=$((start + 345))
step a 80 "$OUT/gemm/log.txt" "$OUT/gemm/log.txt" "$PYTHON" benchmarks/gemm_bench.py --out "$OUT/gemm"
step b 265 "$OUT/bench-spec.txt" "$OUT/bench-spec.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/spec" --parts qwen --engines transformers --only qwen-spec
cat "$OUT/session.txt"; cat "$OUT/gemm/gemm_bench.txt"; grep -hE "^\| qwen|^== " "$OUT"/bench-*.txt
