#!/usr/bin/env bash
# Order submission throughput through the release monitor-server, measured from
# outside with wrk, against a baseline measured in the same run on the same
# machine. Per backend (a fresh database each):
#   1. the database's own one-row INSERT per transaction: pgbench (PostgreSQL),
#      mariadb-slap (MySQL/MariaDB), Python's sqlite3 (SQLite); 16 clients for
#      the server databases, one writer for SQLite;
#   2. GET /health/live (the trivial-endpoint baseline) and POST /api/v1/orders
#      (resting limit buys over 50 funded traders) at each concurrency, with the
#      server's CPU time over the submit run divided by the orders answered;
#   3. the same submit load for 50 traders that already hold $RESTING resting
#      orders each, against 50 fresh traders in the same run;
#   4. GET /api/v1/orders/{id} against GET /health/live at each concurrency,
#      with the server's CPU time per request of each.
# Prints one line per measurement and the ratios.
#   scripts/bench-submit.sh            # every backend
#   BACKENDS=postgres SECS=10 CONNS="100 500" RESTING=500 scripts/bench-submit.sh
#   SERVER_BIN=/path/to/monitor-server scripts/bench-submit.sh   # measure another build
#   STAGES=reads BACKENDS=memory scripts/bench-submit.sh           # only some of steps 2-4
#                                       (an A/B of a change: build each, copy it aside)
set -euo pipefail
cd "$(dirname "$0")/.."
BACKENDS=${BACKENDS:-postgres mysql sqlite memory}
SECS=${SECS:-10}
CONNS=${CONNS:-100 500}
RESTING=${RESTING:-500}
# Which measurements run after the baseline (default all three).
STAGES=${STAGES:-submit resting reads}
stage() { case " $STAGES " in *" $1 "*) return 0 ;; esac; return 1; }
PG=${ORDERMON_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
MY=${ORDERMON_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}
SECRET=bench-submit-secret-0123456789abcdef
PORT=${PORT:-18090}
URL="http://127.0.0.1:$PORT"
THREADS=2
# wrk (the outside load generator), pgbench and the MariaDB client (the database
# baselines): installed from Debian when missing.
need() { # command package
  command -v "$1" >/dev/null && return 0
  echo "installing $2" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null ||
    { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null; }
}
need wrk wrk
need pgbench postgresql-client
need mariadb-slap mariadb-client

# The databases measured: started (as scripts/test.sh starts them) when down.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 120); do port_open "$1" && return 0; sleep 0.5; done
  echo "nothing answers on port $1" >&2; exit 1
}
case " $BACKENDS " in *" postgres "*)
  port_open 5432 || { pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start; wait_port 5432; } ;;
esac
case " $BACKENDS " in *" mysql "*)
  port_open 3306 || { start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd; wait_port 3306; } ;;
esac
cargo build --release -q -p ordermon --bin monitor-server -p ordermon-tests --bin ordermon-loadgen
SERVER_BIN=${SERVER_BIN:-target/release/monitor-server}
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# Waits (up to a minute) until the relay has published every outbox row, so a
# measurement does not share the machine with the previous step's backlog.
settle() {
  for _ in $(seq 1 120); do
    pending=$(curl -sf "$URL/metrics" | awk '$1 == "ordermon_outbox_pending" { print $2 }')
    [ "${pending:-1}" = 0 ] && return 0
    sleep 0.5
  done
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# CPU ticks of every process named $1 (the database's server and backends).
named_ticks() { awk -v c="($1)" '$2 == c { t += $14 + $15 } END { print t + 0 }' /proc/[0-9]*/stat 2>/dev/null; }
# CPU ticks of the whole machine (user, nice, system, irq, softirq).
machine_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
clk=$(getconf CLK_TCK)
field() { sed -n "s/.*[ ^]$1=\([^ ]*\).*/\1/p" <<<"$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
per() { awk -v t="$1" -v k="$clk" -v n="$2" 'BEGIN { printf "%.0f", t / k * 1e6 / n }'; } # ticks count -> us each

wrk_run() { # conns script [env...] -> RESULT line
  local c=$1 script=$2; shift 2
  env "$@" wrk -t"$THREADS" -c"$c" -d"${SECS}s" --timeout 10s -s "scripts/wrk/$script" "$URL/health/live" | grep '^RESULT'
}

db_baseline() { # backend url -> tx/s
  case $1 in
    postgres)
      psql "$2" -q -c "CREATE TABLE bench_insert (id bigserial PRIMARY KEY, v text NOT NULL)"
      echo "INSERT INTO bench_insert (v) VALUES ('x');" >"$work/insert.sql"
      pgbench -n -f "$work/insert.sql" -c 16 -j 2 -T "$SECS" "$2" 2>/dev/null |
        sed -n 's/^tps = \([0-9.]*\).*/\1/p' ;;
    mysql)
      local db=${2##*/} n=$((SECS * 1500))
      mariadb -h127.0.0.1 -uroot "$db" -e "CREATE TABLE bench_insert (id bigint AUTO_INCREMENT PRIMARY KEY, v text NOT NULL)"
      local out
      out=$(mariadb-slap -h127.0.0.1 -uroot --create-schema="$db" --concurrency=16 --iterations=1 \
        --number-of-queries=$n --query="INSERT INTO bench_insert (v) VALUES ('x')" 2>&1)
      local s
      s=$(sed -n 's/.*Average number of seconds to run all queries: \([0-9.]*\).*/\1/p' <<<"$out")
      awk -v n=$n -v s="$s" 'BEGIN { printf "%.1f", n / s }' ;;
    sqlite)
      python3 - "$2" "$SECS" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=NORMAL")
db.execute("CREATE TABLE bench_insert (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
n, end = 0, time.time() + float(sys.argv[2])
start = time.time()
while time.time() < end:
    db.execute("INSERT INTO bench_insert (v) VALUES ('x')"); n += 1
print("%.1f" % (n / (time.time() - start)))
PY
      ;;
    memory) echo 0 ;;
  esac
}

for backend in $BACKENDS; do
  case $backend in
    postgres) db=ordermon_bench_submit; psql "$PG" -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
      dburl="${PG%/*}/$db"; baseurl=$dburl ;;
    mysql) db=ordermon_bench_submit; mariadb -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db"
      dburl="${MY%/*}/$db"; baseurl=$dburl ;;
    sqlite) dburl="sqlite://$work/ordermon.db"; baseurl="$work/baseline.db" ;;
    memory) dburl=memory; baseurl="" ;;
    *) echo "unknown backend $backend" >&2; exit 1 ;;
  esac
  # The database's own processes, whose CPU is counted per order beside the
  # server's (SQLite runs inside the server; the in-memory store has none).
  case $backend in postgres) dbproc=postgres ;; mysql) dbproc=mariadbd ;; *) dbproc=none ;; esac
  echo "== $backend ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), server $SERVER_BIN)"
  m0=$(machine_ticks)
  base=$(db_baseline "$backend" "$baseurl")
  m1=$(machine_ticks)
  [ "$backend" != memory ] && echo "baseline one-row INSERT per transaction: $base tx/s, machine CPU per transaction $(per $((m1 - m0)) "$(awk -v r="$base" -v s="$SECS" 'BEGIN { print r * s }')") us"
  env ORDERMON_DATABASE__URL="$dburl" ORDERMON_AUTH__JWT_SECRET="$SECRET" \
    ORDERMON_HTTP__ADDR="127.0.0.1:$PORT" ORDERMON_LOGS__DIR="$work/logs" ORDERMON_LOGS__LEVEL=warn \
    ORDERMON_HTTP__RATE_LIMIT_PER_USER=0 ORDERMON_AUTH__BOOTSTRAP_ADMIN=loadgen-admin \
    ORDERMON_ENGINE__VENUE=external ORDERMON_DEMO__INSTRUMENTS=false ORDERMON_DEMO__USERS=false \
    "$SERVER_BIN" serve >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 300); do curl -sf "$URL/health/ready" >/dev/null && break; sleep 0.1; done
  curl -sf "$URL/health/ready" >/dev/null || { cat "$work/server.log"; exit 1; }
  lg() { ORDERMON_AUTH__JWT_SECRET="$SECRET" target/release/ordermon-loadgen --url "$URL" --scenarios '' "$@"; }
  if stage submit; then
    for c in $CONNS; do
      lg --users 50 --tokens-out "$work/tokens" >/dev/null
      settle
      h=$(wrk_run "$c" get.lua)
      t0=$(ticks "$server"); d0=$(named_ticks "$dbproc"); m0=$(machine_ticks)
      s=$(wrk_run "$c" submit.lua ORDERMON_TOKENS="$work/tokens" ORDERMON_RUN="c$c")
      t1=$(ticks "$server"); d1=$(named_ticks "$dbproc"); m1=$(machine_ticks)
      orders=$(field requests "$s")
      echo "c=$c health     $h"
      echo "c=$c submit     $s"
      echo "c=$c submit/health $(ratio "$(field rate "$s")" "$(field rate "$h")")  submit/db-baseline $(ratio "$(field rate "$s")" "$base")  server CPU per order $(per $((t1 - t0)) "$orders") us  database CPU per order $(per $((d1 - d0)) "$orders") us  machine CPU per order $(per $((m1 - m0)) "$orders") us"
    done
  fi
  if stage resting; then
    # Open orders: the same load for traders with none, then for traders holding $RESTING each.
    lg --users 50 --tokens-out "$work/fresh" >/dev/null
    lg --users 50 --tokens-out "$work/busy" --resting "$RESTING" --concurrency 32 2>&1 >/dev/null | tail -1
    settle
    c=${CONNS%% *}
    f=$(wrk_run "$c" submit.lua ORDERMON_TOKENS="$work/fresh" ORDERMON_RUN=fresh)
    b=$(wrk_run "$c" submit.lua ORDERMON_TOKENS="$work/busy" ORDERMON_RUN=busy)
    echo "c=$c submit, no resting orders        $f"
    echo "c=$c submit, $RESTING resting orders each $b"
    echo "c=$c resting/none $(ratio "$(field rate "$b")" "$(field rate "$f")")"
  fi
  if stage reads; then
    # Reads.
    lg --users 10 --resting 100 --orders-out "$work/orders" --concurrency 32 >/dev/null 2>&1
    settle
    for c in $CONNS; do
      t0=$(ticks "$server")
      h=$(wrk_run "$c" get.lua)
      t1=$(ticks "$server")
      r=$(wrk_run "$c" get.lua ORDERMON_ORDERS="$work/orders")
      t2=$(ticks "$server")
      echo "c=$c health     $h"
      echo "c=$c read       $r"
      echo "c=$c read/health $(ratio "$(field rate "$r")" "$(field rate "$h")")  server CPU per read $(per $((t2 - t1)) "$(field requests "$r")") us  per health check $(per $((t1 - t0)) "$(field requests "$h")") us"
    done
  fi
  kill -TERM "$server"; wait "$server" || true; server=""
  case $backend in
    postgres) psql "$PG" -q -c "DROP DATABASE IF EXISTS ordermon_bench_submit" ;;
    mysql) mariadb -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS ordermon_bench_submit" ;;
    sqlite) rm -f "$work"/ordermon.db* "$work"/baseline.db* ;;
  esac
done
