#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/browser/), which drive it through
# Playwright's `executable_path` — never `playwright install`, which downloads its own build.
# Idempotent: does nothing when chromium is already on PATH.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium
