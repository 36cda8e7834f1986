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

# `begin_session DIR...`: what every benchmarks/sessions/gpu_session_*.sh does first. Makes $OUT and the DIRs under it,
# exports the Python settings, records the GPU (and its UUID) in $OUT/nvidia-smi.txt, starts $OUT/session.txt
# and sets `start` (epoch seconds) for the deadlines.
begin_session() {
  local d
  mkdir -p "$OUT"
  for d in "$@"; do mkdir -p "$OUT/$d"; done
  export PYTHONUNBUFFERED=1
  export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
  export PYTHON=${PYTHON:-python3}
  start=$(date +%s)
  { nvidia-smi; nvidia-smi -L; } > "$OUT/nvidia-smi.txt" 2>&1  # -L: the GPU's UUID, which tells machines apart
  echo "start $(date -u +%FT%TZ)" > "$OUT/session.txt"
}

# `step LABEL CAP OUTFILE ERRFILE CMD...`: one step of a session script. CMD runs under `timeout`
# for CAP seconds or what is left before $DEADLINE, appending its stdout to OUTFILE and its stderr
# to ERRFILE (the same path for both is fine); then "LABEL rc N at +S s", or "LABEL skipped" when
# the time ran out, goes into $OUT/session.txt. Environment settings: CMD = env NAME=VALUE ...
step() {
  local label=$1 cap out=$3 err=$4
  cap=$(seconds_for "$2")
  shift 4
  if [ "$cap" = 0 ]; then
    echo "$label skipped: the session's time ran out" >> "$OUT/session.txt"
    return
  fi
  timeout "$cap" "$@" >> "$out" 2>> "$err"
  echo "$label rc $? at +$(($(date +%s) - start)) s" >> "$OUT/session.txt"
}
