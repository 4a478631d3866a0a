#!/usr/bin/env bash
# `make lock`: re-resolve every runtime and dev dependency to exact versions with hashes.
#
#   requirements/lock.txt   everything setup.sh installs from the registry, hash-checked
#   requirements/llama.txt  llama-cpp-python's source archive, hash-checked; setup.sh compiles
#                           it into a wheel for this machine's processor (a wheel's hash would
#                           differ per machine, so it cannot sit in lock.txt)
#
# The tool is uv (`uv pip compile`, docs/choices.md says why); it comes from the lock itself.
# Inputs: pyproject.toml's extras (honest ranges) + requirements/pins.in (exact pins).
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
[ -x "$UV" ] || { echo "lock: $UV missing; run 'make setup' first (uv is in the lock)"; exit 2; }

common=(--python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes
        --index-url https://pypi.org/simple --index-strategy unsafe-best-match
        --no-header --annotation-style line)
# The CPU torch wheel is found only on disk.
[ -d /opt/wheels ] && common+=(--find-links /opt/wheels)

"$UV" pip compile pyproject.toml requirements/pins.in --extra local --extra semantic --extra dev \
  "${common[@]}" --no-emit-package llama-cpp-python -o requirements/lock.txt "$@"
version=$(sed -n 's/^llama-cpp-python\[server\]==\([^ ]*\).*/\1/p' requirements/pins.in)
echo "llama-cpp-python==$version" | "$UV" pip compile - --no-deps "${common[@]}" \
  --no-binary llama-cpp-python -o requirements/llama.txt
echo "lock: requirements/lock.txt ($(grep -c '==' requirements/lock.txt) packages), requirements/llama.txt"
