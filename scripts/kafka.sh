#!/usr/bin/env bash
# Installs (once) and starts a Kafka-compatible broker for the test suites:
# tansu, from crates.io, with in-memory storage on 127.0.0.1:9092. It does not
# auto-create topics, so the topics the suites use are created here.
#   scripts/kafka.sh ensure   install if missing, start if not listening, create topics
#   scripts/kafka.sh stop     stop the broker this script started
set -euo pipefail

ADDR=127.0.0.1
PORT=9092
PIDFILE=${TMPDIR:-/tmp}/ordermon-tansu.pid
LOGFILE=${TMPDIR:-/tmp}/ordermon-tansu.log
# Topics the suites use; tests create uniquely named ones through the admin API too.
TOPICS=(ordermon.events ordermon.events.dlq)

port_open() { (exec 3<>"/dev/tcp/$ADDR/$PORT") 2>/dev/null; }

install() {
  command -v tansu >/dev/null 2>&1 && return 0
  export PATH="$HOME/.cargo/bin:$PATH"
  command -v tansu >/dev/null 2>&1 && return 0
  echo "installing tansu (a Kafka-compatible broker; about 13 minutes the first time)"
  # Without --locked it does not compile.
  cargo install tansu --locked --features dynostore
}

start() {
  port_open && return 0
  install
  export PATH="$HOME/.cargo/bin:$PATH"
  echo "starting tansu on $ADDR:$PORT"
  nohup tansu broker \
    --listener-url "tcp://$ADDR:$PORT" \
    --advertised-listener-url "tcp://$ADDR:$PORT" \
    --storage-engine memory://tansu/ >"$LOGFILE" 2>&1 &
  echo $! >"$PIDFILE"
  local i
  for ((i = 0; i < 60; i++)); do
    port_open && return 0
    sleep 0.5
  done
  echo "tansu did not start; see $LOGFILE" >&2
  return 1
}

topics() {
  export PATH="$HOME/.cargo/bin:$PATH"
  local existing t
  existing=$(tansu topic list --broker "tcp://$ADDR:$PORT" 2>/dev/null || true)
  for t in "${TOPICS[@]}"; do
    if ! grep -qF -- "\"name\":\"$t\"" <<<"$existing"; then
      tansu topic create "$t" --broker "tcp://$ADDR:$PORT" --partitions 3 >/dev/null 2>&1 || true
    fi
  done
}

case "${1:-ensure}" in
  ensure) start && topics ;;
  stop) [ -f "$PIDFILE" ] && kill "$(cat "$PIDFILE")" 2>/dev/null; rm -f "$PIDFILE" ;;
  *) echo "usage: $0 ensure|stop" >&2; exit 2 ;;
esac
