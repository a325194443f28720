#!/usr/bin/env bash
# GET /api/v1/orders/{id} throughput through the real server on PostgreSQL,
# with the cache off, in-process (`memory`) and tiered over Redis, one server
# after the other in one run. Each run also measures /health/live (the
# trivial-endpoint baseline) and POST /api/v1/orders (which creates the orders
# the read scenario fetches). Figures go to docs/benchmarks.md.
#   scripts/bench-cache.sh [seconds-per-scenario] [concurrency]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CONC=${2:-32}
PG=${ORDERMON_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS=${ORDERMON_TEST_REDIS_URL:-redis://127.0.0.1:6379/}
SECRET=bench-cache-secret-0123456789abcdef
PORT=18080
cargo build --release -q -p ordermon --bin monitor-server -p ordermon-tests --bin ordermon-loadgen
base=${PG%/*}
for cache in off memory redis; do
  db="ordermon_bench_cache_$cache"
  psql "$PG" -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  logs=$(mktemp -d)
  env ORDERMON_DATABASE__URL="$base/$db" ORDERMON_AUTH__JWT_SECRET="$SECRET" \
    ORDERMON_HTTP__ADDR="127.0.0.1:$PORT" ORDERMON_LOGS__DIR="$logs" ORDERMON_LOGS__LEVEL=warn \
    ORDERMON_HTTP__RATE_LIMIT_PER_USER=0 ORDERMON_AUTH__BOOTSTRAP_ADMIN=loadgen-admin \
    ORDERMON_ENGINE__VENUE=external ORDERMON_DEMO__INSTRUMENTS=false \
    ORDERMON_CACHE__ENABLED=$([ "$cache" = off ] && echo false || echo true) \
    ORDERMON_CACHE__URL=$([ "$cache" = redis ] && echo "$REDIS" || echo memory) \
    target/release/monitor-server serve &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && break; sleep 0.1; done
  echo "== cache $cache"
  ORDERMON_AUTH__JWT_SECRET="$SECRET" target/release/ordermon-loadgen \
    --url "http://127.0.0.1:$PORT" --concurrency "$CONC" --duration "$SECS" --users 50 \
    --scenarios health,submit,read
  kill -TERM $pid; wait $pid || true
  rm -rf "$logs"
  psql "$PG" -q -c "DROP DATABASE IF EXISTS $db"
done
