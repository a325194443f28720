#!/usr/bin/env bash
# The whole test suite, as CI runs it: starts any missing local service, then runs
# formatting, lints, the domain purity check, and every test against every backend
# with ORDERMON_REQUIRE_SERVICES=1 (an unreachable service fails loudly).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # name port seconds
  local i
  for ((i = 0; i < $3 * 2; i++)); do
    port_open "$2" && return 0
    sleep 0.5
  done
  echo "service $1 did not come up on port $2" >&2
  return 1
}

ensure_postgres() {
  port_open 5432 && return 0
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  wait_port postgres 5432 30
}

ensure_mysql() {
  port_open 3306 && return 0
  log "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_port mariadb 3306 60
}

ensure_redis() {
  port_open 6379 && return 0
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port redis 6379 20
}

ensure_rabbitmq() {
  port_open 5672 && return 0
  log "starting RabbitMQ"
  rabbitmq-server -detached
  wait_port rabbitmq 5672 120
}

ensure_kafka() {
  # Only when the workspace has Kafka code to test.
  [ -d infrastructure/kafka ] || return 0
  scripts/kafka.sh ensure
}

ensure_chromium() {
  # The dashboard's browser tests drive Debian's Chromium through chromedriver.
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && return 0
  log "installing chromium and chromium-driver"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null ||
    { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; }
}

services() {
  ensure_chromium
  ensure_postgres
  ensure_mysql
  ensure_redis
  tls_env=$(scripts/tls-services.sh); eval "$tls_env" # TLS endpoints, exported for tests/tests/tls.rs
  ensure_rabbitmq
  ensure_kafka
}

domain_purity() {
  log "checking ordermon-domain has no I/O dependency"
  local tree bad
  tree=$(cargo tree -p ordermon-domain -e normal --prefix none --format '{p}')
  bad=$(echo "$tree" | grep -E '^(tokio|sqlx|redis|deadpool|lapin|rdkafka|reqwest|axum|hyper|mio)[ -]' || true)
  if [ -n "$bad" ]; then
    echo "ordermon-domain must stay pure, but depends on:" >&2
    echo "$bad" >&2
    return 1
  fi
  echo "ok: $(echo "$tree" | sort -u | wc -l) crates, none of them I/O"
}

main() {
  export ORDERMON_REQUIRE_SERVICES=1
  export PROPTEST_CASES="${PROPTEST_CASES:-256}"
  services
  log "cargo fmt --check"
  cargo fmt --all --check
  domain_purity
  log "deployment files (promtool, check-deploy.py)"
  scripts/check-deploy.sh
  log "cargo clippy --all-targets -- -D warnings"
  cargo clippy --workspace --all-targets --all-features -- -D warnings
  log "tests (every suite, every backend)"
  # Suites that stop a shared service (Redis outage, RabbitMQ restart) run
  # alone, after everything else, so they cannot disturb other suites; so does
  # the cluster suite, whose lease timings (2 s TTLs, SIGSTOP past them) are
  # what it measures and would only measure the other suites' load.
  local outage='(package(ordermon-tests) & (binary(cache_outage) | binary(broker_restart))) | (package(ordermon) & binary(cluster))'
  if command -v cargo-nextest >/dev/null 2>&1; then
    cargo nextest run --workspace --all-features --no-fail-fast -E "not ($outage)"
    log "service-outage and cluster suites (serial)"
    # Same flags as above so the build is reused, not redone.
    cargo nextest run --workspace --all-features --no-fail-fast \
      --test-threads 1 --run-ignored only -E "$outage"
  else
    cargo test --workspace --all-features --no-fail-fast -- \
      --skip redis_stopped_mid_test --skip rabbitmq_restarted_mid_stream
    cargo test -p ordermon-tests --all-features --test cache_outage -- --ignored --test-threads 1
    cargo test -p ordermon-tests --all-features --test broker_restart -- --ignored --test-threads 1
    cargo test -p ordermon --all-features --test cluster -- --ignored --test-threads 1
  fi
  # Doc tests are not run by nextest.
  cargo test --workspace --all-features --doc
  # The embedding example as a user runs it (`cargo run -p
  # ordermon-example-embedded`; its test ran above), from the build the
  # suites made: it exits non-zero unless its strategy traded through its
  # own venue.
  log "the embedding example"
  RUST_LOG=warn target/debug/ordermon-example-embedded
  # The OpenAPI document against the server it describes (the debug binary
  # the suites above built), with a fixed seed: every check, zero failures.
  log "schemathesis: the OpenAPI document is the truth"
  SCHEMATHESIS_BIN=target/debug/monitor-server scripts/schemathesis.sh
}

main "$@"
