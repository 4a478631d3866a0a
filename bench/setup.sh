#!/usr/bin/env bash
# Installs what the benchmark compares against and measures with, once, under bench/.peers/
# (gitignored). Idempotent: each piece has a stamp keyed on its inputs, so a second run is a
# no-op that takes well under a second.
#
#   wrk                 Debian package (the C load generator)
#   tools-venv          py-spy + pyinstrument, for profiling (kept out of the project's .venv)
#   litellm-venv        litellm[proxy] from PyPI, in its own venv
#   portkey             @portkey-ai/gateway from the npm registry, with the PR #1551 fix
#
# Usage: bash bench/setup.sh [wrk] [tools] [litellm] [portkey]   (default: all)
set -euo pipefail
cd "$(dirname "$0")"
PEERS=$PWD/.peers
mkdir -p "$PEERS"
PYTHON=${PYTHON:-python3}
LITELLM_SPEC=${LITELLM_SPEC:-litellm[proxy]==1.108.7}   # the versions docs/performance.md reports
PORTKEY_SPEC=${PORTKEY_SPEC:-@portkey-ai/gateway@1.15.2}
want=${*:-wrk tools litellm portkey}

has() { [[ " $want " == *" $1 "* ]]; }
stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

if has wrk; then
  command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
fi

if has tools; then
  v=$PEERS/tools-venv; key="py-spy pyinstrument aiohttp uvloop"
  if ! stamp_ok "$v/.stamp" "$key"; then
    echo "bench setup: tools venv (py-spy, pyinstrument)"
    "$PYTHON" -m venv "$v"
    "$v/bin/pip" install -q --disable-pip-version-check $key
    echo "$key" > "$v/.stamp"
  fi
fi

if has litellm; then
  v=$PEERS/litellm-venv; key=$LITELLM_SPEC
  if ! stamp_ok "$v/.stamp" "$key"; then
    echo "bench setup: LiteLLM proxy ($LITELLM_SPEC) into $v (a few minutes, once)"
    "$PYTHON" -m venv "$v"
    "$v/bin/pip" install -q --disable-pip-version-check "$LITELLM_SPEC"
    echo "$key" > "$v/.stamp"
  fi
fi

if has portkey; then
  d=$PEERS/portkey; key="$PORTKEY_SPEC pr1551"
  if ! stamp_ok "$d/.stamp" "$key"; then
    echo "bench setup: Portkey gateway ($PORTKEY_SPEC) into $d"
    mkdir -p "$d"
    [ -f "$d/package.json" ] || echo '{"name":"bench-portkey","private":true}' > "$d/package.json"
    (cd "$d" && npm install --silent --no-audit --no-fund "$PORTKEY_SPEC")
    echo "$key" > "$d/.stamp"
  fi
  # Portkey's issue #1389: on Node 20 its SSE pass-through builds `new Response(p, e)` from
  # a fetch Response `e`, which undici rejects, so every stream fails. PR #1551's one-line
  # fix copies status, statusText and headers instead. Applied with sed, idempotently.
  js=$d/node_modules/@portkey-ai/gateway/build/start-server.js
  if grep -q 'new Response(p,e)' "$js"; then
    sed -i 's/new Response(p,e)/new Response(p,{status:e.status,statusText:e.statusText,headers:new Headers(e.headers)})/' "$js"
    echo "bench setup: applied Portkey PR #1551 fix to $js"
  fi
  grep -q 'new Response(p,{status:e.status,statusText:e.statusText' "$js" \
    || echo "bench setup: WARNING: Portkey's build changed; PR #1551's fix not applied (streams may fail on Node 20)" >&2
  # Its server binds every interface and has no option for the address; the benchmark keeps
  # to loopback, so pass @hono/node-server's own `hostname` option.
  if grep -q 'e({fetch:Lu.fetch,port:Ku})' "$js"; then
    sed -i 's/e({fetch:Lu.fetch,port:Ku})/e({fetch:Lu.fetch,port:Ku,hostname:"127.0.0.1"})/' "$js"
    echo "bench setup: bound Portkey to 127.0.0.1 in $js"
  fi
  grep -q 'hostname:"127.0.0.1"' "$js" \
    || echo "bench setup: WARNING: Portkey's build changed; cannot bind it to 127.0.0.1, the bench will skip it" >&2
fi
