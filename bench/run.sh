#!/usr/bin/env bash
# The benchmark behind `make bench`; see docs/performance.md.
#
#   bash bench/run.sh            install (once, cached) and run everything, ~10 minutes
#   bash bench/run.sh --smoke    mock + ridethrough only, a few seconds: is the harness OK?
#   bash bench/run.sh --sections matrix --systems direct,ridethrough   any part; see --help
#   bash bench/run.sh --sections semantic    the semantic cache alone: eval sets + lookup latency
#                                            (or .venv/bin/python bench/semantic/eval.py)
#
# Loopback only; every load is bounded in time and count and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || bash scripts/setup.sh

if [[ " $* " == *" --smoke "* ]]; then
  exec "$PY" bench/bench.py "$@"
fi

bash bench/setup.sh
exec "$PY" bench/bench.py "$@"
