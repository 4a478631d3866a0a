#!/usr/bin/env bash
# Creates .venv and installs exactly the locked set (requirements/lock.txt, hash-checked),
# llama-cpp-python compiled for this processor, and ridethrough itself (editable, no deps).
# Cheap when nothing changed: a stamp keyed on the install inputs skips everything. When the
# inputs change, the venv is built anew, so it never holds a package the lock does not list.
#
# llama-cpp-python compiles from source (~4-8 min on 2 cores). Its wheel is built once into a
# cache folder outside the work tree, keyed by the processor's feature flags and the CMake
# arguments (a native build uses the building CPU's instructions, so a wheel built on an
# AVX-512 machine may not run on an AVX2 one). A fresh clone on the same machine — and CI —
# reuses it.
#
# Environment: VENV (default .venv), PYTHON, RIDETHROUGH_WHEEL_CACHE, and CMAKE_ARGS (passed to
# llama.cpp's build; scripts/kernel-check.sh uses it to build a non-native kernel path).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
CMAKE_ARGS=${CMAKE_ARGS:-}
cpu_key=$( (grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || uname -m; echo "$CMAKE_ARGS") \
  | sha256sum | cut -c1-12)
WHEELS=${RIDETHROUGH_WHEEL_CACHE:-$HOME/.cache/ridethrough/wheels}/$cpu_key
LLAMA_VERSION=$(sed -n 's/^llama-cpp-python==\([^ ]*\).*/\1/p' requirements/llama.txt)

stamp="$VENV/.ridethrough-installed"
inputs=$( (cat pyproject.toml requirements/lock.txt requirements/llama.txt scripts/setup.sh \
             tests/clients/node/package-lock.json;
           echo "$cpu_key") | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]; then
  exit 0
fi

# Debian's chromium for the status-page browser test (Playwright drives it; no download).
bash scripts/install-browser.sh

if [ -d "$VENV" ]; then
  echo "setup: the lock or set-up changed; building $VENV anew"
  rm -rf "$VENV"
fi
echo "setup: creating $VENV"
"$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/pip" --quiet)
# The CPU torch wheel of the lock lies on this kind of machine's disk.
links=()
[ -d /opt/wheels ] && links=(--find-links /opt/wheels)

mkdir -p "$WHEELS"
if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  echo "setup: building llama-cpp-python $LLAMA_VERSION once into $WHEELS (a few minutes)"
  src=$(mktemp -d)
  trap 'rm -rf "$src"' EXIT
  # The source archive is hash-checked against the lock before it is compiled.
  "${pip[@]}" download --no-deps --no-binary :all: --require-hashes -r requirements/llama.txt -d "$src"
  CMAKE_ARGS="$CMAKE_ARGS" "${pip[@]}" wheel --no-deps "$src"/llama_cpp_python-*.tar.gz -w "$WHEELS"
fi

echo "setup: installing the locked set into $VENV"
"${pip[@]}" install --require-hashes --no-deps "${links[@]}" -r requirements/lock.txt
"${pip[@]}" install --no-deps "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl
# The locked setuptools builds the project; nothing is resolved beyond the lock.
"${pip[@]}" install --no-deps --no-build-isolation -e .
"$VENV/bin/pip" check

# Third-party clients for tests/e2e/test_third_party_clients.py, exactly as locked (integrity
# hashes in package-lock.json). Install scripts are held back; Claude Code's only one copies
# its platform binary from an optional dependency already downloaded, so it is run by hand.
echo "setup: installing the Node clients (tests/clients/node)"
(cd tests/clients/node && npm ci --no-fund --no-audit --ignore-scripts --loglevel=error \
  && node node_modules/@anthropic-ai/claude-code/install.cjs)
echo "$inputs" > "$stamp"
