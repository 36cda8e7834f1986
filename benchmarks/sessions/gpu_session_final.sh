#!/usr/bin/env bash
# The last call of a session: the norm chain (fast.model NORM_CHAIN) against its variant in one
# process at batch 32, the faster of the two kept for the benchmarks after it (the choice goes into
# session.txt), then the issue's batch-32 benchmark on both engines and the other Qwen3-4B
# workloads on the fast engine; one H100, at most 8 min 55 s (what the session's budget leaves).
#   OUT=dir bash benchmarks/sessions/gpu_session_final.sh
#  a. Qwen3-4B batch 32, greedy: defaults; norm-chain-off
#  b. benchmarks/fast_engine.py, Qwen3-4B batch 32, both engines
#  c. benchmarks/fast_engine.py, the other Qwen3-4B workloads (batch 1 and 4, speculative), fast engine
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_final.sh}
. benchmarks/deadline.sh
begin_session p32 b32 bench
DEADLINE=$((start + 535))
step a 150 "$OUT/profile.txt" "$OUT/profile.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p32" --cases 32g --variants norm-chain-off
# the middle of each case's three timed steps: first line defaults, second the variant
mid=()
while read -r line; do
  mid+=("$(echo "$line" | sed 's/.*events) //; s/ ms$//' | tr ', ' '\n\n' | grep . | sort -n | sed -n 2p)")
done < <(grep -h "decode step" "$OUT/profile.txt")
if [ "${#mid[@]}" = 2 ] && awk -v on="${mid[0]}" -v off="${mid[1]}" 'BEGIN { exit !(off < on) }'; then
  export INFERCOMP_FAST_NORM_CHAIN=0
fi
echo "norm chain: on ${mid[0]:-?} ms, off ${mid[1]:-?} ms; benchmarks with INFERCOMP_FAST_NORM_CHAIN=${INFERCOMP_FAST_NORM_CHAIN:-1}" >> "$OUT/session.txt"
step b 160 "$OUT/b32.txt" "$OUT/b32.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/b32" --parts qwen --engines fast,transformers --only qwen-b32
step c 290 "$OUT/bench.txt" "$OUT/bench.txt" \
  "$PYTHON" benchmarks/fast_engine.py --out "$OUT/bench" --parts qwen --engines fast --only qwen-b4,qwen-spec
cat "$OUT/session.txt"; grep -h "^variant\|decode step" "$OUT"/profile.txt | cut -c1-40,200-400
grep -hE "^\| qwen|^== " "$OUT/b32.txt" "$OUT/bench.txt"; grep -A 30 "Speculative mechanism" "$OUT/bench.txt" | head -34
grep -hE "Error|error:" "$OUT"/profile.txt "$OUT"/b32.txt "$OUT"/bench.txt | head -5
