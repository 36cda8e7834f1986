#!/usr/bin/env bash
# Thin launcher for infercomp. Usage: ./run.sh quick|example|comprehensive|check|launch|test [args...]
# The presets run on the embedded offline pair; pass --set main_model=... to use other models.
set -euo pipefail
cd "$(dirname "$0")"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
cmd=${1:-help}
shift || true
case "$cmd" in
  quick|example|comprehensive) exec infercomp run "$cmd" --embedded --output-dir "results/$cmd" "$@" ;;
  # With no arguments, check what `./run.sh quick` runs: the quick preset on the embedded pair.
  check) if [ $# -eq 0 ]; then exec infercomp check quick --embedded; else exec infercomp check "$@"; fi ;;
  launch) exec infercomp launch "$@" ;;
  test) exec python -m pytest -q "$@" ;;
  help|-h|--help)
    echo "usage: ./run.sh quick|example|comprehensive|check|launch|test [args...]"
    echo "  quick, example, comprehensive  run that preset on the embedded pair (results/<preset>/)"
    echo "  check [CONFIG] [--embedded]    check packages, devices and models (default: quick --embedded)"
    echo "  launch                         interactive launcher"
    echo "  test [pytest args]             the test suite" ;;
  *) echo "run.sh: unknown command '$cmd' (try ./run.sh help)" >&2; exit 2 ;;
esac
