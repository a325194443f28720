#!/usr/bin/env bash
# Runs schemathesis (a property-based API tester, from PyPI) with every check
# against a monitor-server on the embedded default (SQLite in a temporary
# directory), with a fixed seed: the OpenAPI document at /api/v1/openapi.json
# must describe exactly what the server does. Exits non-zero on any failure.
#
#   scripts/schemathesis.sh                 # builds the server (debug) if needed
#   SCHEMATHESIS_BIN=target/release/monitor-server scripts/schemathesis.sh
#   SCHEMATHESIS_SEED=1 SCHEMATHESIS_EXAMPLES=50 scripts/schemathesis.sh
#
# Called last by scripts/test.sh. schemathesis is installed into
# .venv-schemathesis/ (git-ignored) at the pinned version the first time.
set -euo pipefail
cd "$(dirname "$0")/.."

version=4.32.5
seed="${SCHEMATHESIS_SEED:-20261205}"
examples="${SCHEMATHESIS_EXAMPLES:-20}"
port="${SCHEMATHESIS_PORT:-18479}"
venv=.venv-schemathesis
bin="${SCHEMATHESIS_BIN:-target/debug/monitor-server}"

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$version"; then
  echo "==> installing schemathesis $version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$version"
fi
if [[ -z "${SCHEMATHESIS_BIN:-}" ]]; then
  cargo build -q -p ordermon --bin monitor-server
fi

work=$(mktemp -d)
server=
cleanup() {
  [[ -n "$server" ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The embedded default with its demo users, on its own port and files. Request
# rate limits are off: schemathesis sends as fast as it can, and a 429 would hide
# the answer under test. The rest is the default configuration.
export ORDERMON_HTTP__ADDR="127.0.0.1:$port"
export ORDERMON_HTTP__RATE_LIMIT_PER_USER=0
export ORDERMON_DATABASE__URL="sqlite://$work/ordermon.db"
export ORDERMON_LOGS__DIR="$work/logs"
export ORDERMON_LOGS__LEVEL=warn
export ORDERMON_AUTH__JWT_SECRET
ORDERMON_AUTH__JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
admin="st-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export ORDERMON_AUTH__BOOTSTRAP_ADMIN="$admin"

"$bin" >"$work/server.log" 2>&1 &
server=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 120); do
  if curl -fsS "$base/health/ready" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then
    echo "monitor-server exited:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  sleep 0.5
done
curl -fsS "$base/health/ready" >/dev/null

# An admin of its own, with a token minted the way operators mint one. Its id
# is random, so no generated request names it: schemathesis disables, revokes
# and re-roles the users it can name (the demo users among them), and the token
# must keep working through the run.
token=$("$bin" token --sub "$admin" --role admin --ttl 2h)

echo "==> schemathesis $version, seed $seed, $examples examples per operation"
"$venv/bin/schemathesis" --config-file scripts/schemathesis.toml run "$base/api/v1/openapi.json" \
  --checks all \
  --seed "$seed" \
  --max-examples "$examples" \
  --workers 1 \
  --generation-database none \
  --request-timeout 30 \
  --header "Authorization: Bearer $token" \
  --exclude-path /api/v1/stream \
  --no-color \
  "$@"
