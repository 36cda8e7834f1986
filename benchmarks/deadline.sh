# Sourced by the GPU scripts: `seconds_for CAP` prints the seconds a step may run, CAP or what is
# left before $DEADLINE (epoch seconds, when set), whichever is less; 0 when under 15 s are left
# (the step is then skipped, and says so).
seconds_for() {
  local cap=$1 left
  if [ -n "${DEADLINE:-}" ]; then
    left=$((DEADLINE - $(date +%s)))
    [ "$left" -lt "$cap" ] && cap=$left
  fi
  [ "$cap" -lt 15 ] && cap=0
  echo "$cap"
}

# `begin_session DIR...`: what every gpu_session_*.sh does first. Makes $OUT and the DIRs under it,
# exports the Python settings, records the GPU in $OUT/nvidia-smi.txt, starts $OUT/session.txt
# and sets `start` (epoch seconds) for the deadlines.
begin_session() {
  local d
  mkdir -p "$OUT"
  for d in "$@"; do mkdir -p "$OUT/$d"; done
  export PYTHONUNBUFFERED=1
  export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
  export PYTHON=${PYTHON:-python3}
  start=$(date +%s)
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
  echo "start $(date -u +%FT%TZ)" > "$OUT/session.txt"
}
