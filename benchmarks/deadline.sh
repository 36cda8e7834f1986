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
