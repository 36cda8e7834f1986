#!/usr/bin/env bash
# Raw output: docs/measurements/2026-11-28-h200/call-4. Since then top-p-bits-3 was removed (2 bits won),
# 2 bits are the default from 32 rows, and top-p-bits-2 sets fewer rows' digits (top-p-many-bits-4 the old ones).
# The top-p search with narrower digits, in the session's last three device minutes: the nucleus
# step at 32 rows with 4-bit digits (the default), 2 and 3, in one process, then the compiled
# search's keep set against the PyTorch search at 4 and 2 bits; one H200, at most 3 min.
#   OUT=dir bash benchmarks/sessions/gpu_session_h200_top_p.sh
set -u
OUT=${OUT:?usage: OUT=dir bash benchmarks/sessions/gpu_session_h200_top_p.sh}
. benchmarks/deadline.sh
begin_session p32
DEADLINE=$((start + 180))
step a 130 "$OUT/profile.txt" "$OUT/profile.txt" \
  "$PYTHON" benchmarks/profile_fast_step.py --out "$OUT/p32" --cases 32s --variants top-p-bits-2,top-p-bits-3
step b 50 "$OUT/pytest_gpu.txt" "$OUT/pytest_gpu.txt" \
  "$PYTHON" -m pytest -v --tb=short -m gpu -p no:cacheprovider tests/test_fast_engine_gpu.py -k top_p_kernels_keep
cat "$OUT/session.txt"; grep -h "^variant\|decode step\|mass_pass" "$OUT"/profile.txt "$OUT"/p32/* | cut -c1-40,330-420
grep -hE "PASSED|FAILED|passed|failed" "$OUT"/pytest_gpu.txt | tail -8
