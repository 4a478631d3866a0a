#!/usr/bin/env bash
# `make test-latest`: the SDK-facing suites against the newest anthropic / openai releases.
#
# Builds .venv-latest from the same lock as .venv (scripts/setup.sh), upgrades only the client
# SDKs, and runs the tests that drive them. The main suite stays on the locked versions, so a
# new SDK release that changes behaviour fails here, by name, and never breaks `make test`.
# Extra pytest arguments pass through: `make test-latest ARGS="-k stream"`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-latest bash scripts/setup.sh
# Newest releases from the registry; the stamp is cleared so the next setup restores the lock.
rm -f .venv-latest/.ridethrough-installed
.venv-latest/bin/pip install --quiet --upgrade --upgrade-strategy only-if-needed anthropic openai
.venv-latest/bin/python - <<'PY'
from importlib.metadata import version
print("test-latest: anthropic", version("anthropic"), "· openai", version("openai"))
PY
.venv-latest/bin/python -m pytest tests/e2e tests/protocol tests/unit/simulator/test_simulator_faults.py \
  -p no:cacheprovider "$@"
