#!/usr/bin/env bash
# Creates .venv (if missing) and installs ridethrough with everything the suite needs.
# Idempotent and cheap when nothing changed: a stamp keyed on the install inputs skips pip.
#
# llama-cpp-python compiles from source (~4-8 min on 2 cores). We build its wheel once into a
# cache folder this project owns, outside the work tree, so a fresh clone (and CI on the same
# machine) reuses it instead of compiling again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
WHEELS=${RIDETHROUGH_WHEEL_CACHE:-$HOME/.cache/ridethrough/wheels}
LLAMA_VERSION=0.3.36
EXTRAS=${RIDETHROUGH_EXTRAS:-local,semantic,dev}

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.ridethrough-installed"
inputs=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]; then
  exit 0
fi

# Debian's chromium for the status-page browser test (Playwright drives it; no download).
bash scripts/install-browser.sh

mkdir -p "$WHEELS"
if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  echo "setup: building llama-cpp-python $LLAMA_VERSION once into $WHEELS (a few minutes)"
  "$VENV/bin/pip" wheel --quiet --no-deps "llama-cpp-python==$LLAMA_VERSION" -w "$WHEELS"
fi

echo "setup: installing ridethrough[$EXTRAS] into $VENV"
# torch comes from the CPU wheel on this machine's disk (pip's find-links); pinning it first
# keeps sentence-transformers from pulling a multi-GB CUDA build.
"$VENV/bin/pip" install --quiet --find-links "$WHEELS" \
  -e ".[$EXTRAS]" "llama-cpp-python[server]==$LLAMA_VERSION"
echo "$inputs" > "$stamp"
