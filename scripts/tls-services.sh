#!/usr/bin/env bash
# TLS endpoints for the transport-security tests (tests/tests/tls.rs), next to the
# shared services and without restarting them:
#
# - a throwaway CA and a server certificate for localhost / 127.0.0.1, plus an
#   unrelated "wrong" CA for the failing-verification cases, in $ORDERMON_TLS_DIR
#   (default ${TMPDIR:-/tmp}/ordermon-tls);
# - PostgreSQL: the running cluster on 5432 serves that certificate (ALTER SYSTEM
#   and a configuration reload; SSL settings reload without a restart). The
#   certificate and key are copied into the cluster's data directory, so a later
#   restart finds them even when the temporary directory is gone;
# - Redis: a second, TLS-only redis-server on 6390;
# - MariaDB: a second mariadbd on 3307 with its own data directory, TLS required
#   (--require-secure-transport), user `ordermon` / password `ordermon`.
#
# Idempotent: what is up is reused. Prints `export NAME=value` lines for the test
# environment on stdout (test.sh evals them); progress goes to stderr.
set -euo pipefail

DIR="${ORDERMON_TLS_DIR:-${TMPDIR:-/tmp}/ordermon-tls}"
PG_PORT="${ORDERMON_TLS_PG_PORT:-5432}"
REDIS_TLS_PORT="${ORDERMON_TLS_REDIS_PORT:-6390}"
MYSQL_TLS_PORT="${ORDERMON_TLS_MYSQL_PORT:-3307}"

# Set when this run made new certificates: instances still serving old ones
# (started by an earlier run, named by their pid files) are restarted.
FRESH=0

say() { printf '==> tls: %s\n' "$*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # name port seconds
  local i
  for ((i = 0; i < $3 * 2; i++)); do
    port_open "$2" && return 0
    sleep 0.5
  done
  echo "tls: $1 did not come up on port $2" >&2
  return 1
}

# Stops an instance an earlier run started, by its pid file, and waits for its
# port to close.
stop_stale() { # name pidfile port
  local pid i
  pid=$(cat "$2" 2>/dev/null) || return 0
  say "restarting $1: its certificate was replaced"
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    port_open "$3" || return 0
    sleep 0.5
  done
  echo "tls: $1 (pid $pid) did not stop" >&2
  return 1
}

certificates() {
  mkdir -p "$DIR"
  chmod 755 "$DIR"
  # A CA that signed the current server certificate: nothing to do.
  if [ -s "$DIR/ca.pem" ] && [ -s "$DIR/server.pem" ] && [ -s "$DIR/wrong-ca.pem" ] &&
    openssl verify -CAfile "$DIR/ca.pem" "$DIR/server.pem" >/dev/null 2>&1 &&
    openssl x509 -checkend 86400 -noout -in "$DIR/server.pem" >/dev/null; then
    return 0
  fi
  FRESH=1
  say "making a throwaway CA and a certificate for localhost/127.0.0.1 in $DIR"
  for ca in ca wrong-ca; do
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=ordermon test $ca" \
      -keyout "$DIR/$ca-key.pem" -out "$DIR/$ca.pem" 2>/dev/null
  done
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$DIR/server-key.pem" -out "$DIR/server.csr" 2>/dev/null
  printf '%s\n' \
    "subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1" \
    "basicConstraints = critical, CA:FALSE" \
    "keyUsage = critical, digitalSignature, keyEncipherment" \
    "extendedKeyUsage = serverAuth" >"$DIR/server.ext"
  openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca-key.pem" \
    -CAcreateserial -days 30 -extfile "$DIR/server.ext" -out "$DIR/server.pem" 2>/dev/null
  chmod 644 "$DIR"/*.pem
  chmod 600 "$DIR"/*-key.pem
}

postgres_tls() {
  local data ver
  port_open "$PG_PORT" || { echo "tls: PostgreSQL is not up on $PG_PORT" >&2; return 1; }
  data=$(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atc 'SHOW data_directory')
  ver=$(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atc 'SHOW server_version_num')
  [ "$ver" -ge 100000 ] || { echo "tls: PostgreSQL $ver cannot reload SSL settings" >&2; return 1; }
  mkdir -p "$data/ordermon-tls"
  # Always refresh the copies: the CA may have been remade since the last run.
  install -o postgres -g postgres -m 644 "$DIR/server.pem" "$data/ordermon-tls/server.pem"
  install -o postgres -g postgres -m 600 "$DIR/server-key.pem" "$data/ordermon-tls/server-key.pem"
  chown postgres:postgres "$data/ordermon-tls"
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
ALTER SYSTEM SET ssl = on;
ALTER SYSTEM SET ssl_cert_file = '$data/ordermon-tls/server.pem';
ALTER SYSTEM SET ssl_key_file = '$data/ordermon-tls/server-key.pem';
SELECT pg_reload_conf();
SQL
  local i
  for ((i = 0; i < 20; i++)); do
    if psql "host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres sslmode=verify-full sslrootcert=$DIR/ca.pem" \
      -Atc 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()' 2>/dev/null | grep -qx t; then
      say "PostgreSQL on $PG_PORT serves the test certificate"
      return 0
    fi
    sleep 0.5
  done
  echo "tls: PostgreSQL on $PG_PORT does not accept verified TLS (see its log)" >&2
  return 1
}

redis_tls() {
  [ "$FRESH" = 0 ] || stop_stale redis-tls "$DIR/redis-tls.pid" "$REDIS_TLS_PORT"
  if port_open "$REDIS_TLS_PORT"; then
    say "Redis TLS already up on $REDIS_TLS_PORT"
    return 0
  fi
  say "starting a TLS-only Redis on $REDIS_TLS_PORT"
  redis-server --daemonize yes --bind 127.0.0.1 --port 0 --tls-port "$REDIS_TLS_PORT" \
    --tls-cert-file "$DIR/server.pem" --tls-key-file "$DIR/server-key.pem" \
    --tls-ca-cert-file "$DIR/ca.pem" --tls-auth-clients no \
    --save "" --appendonly no --dir "$DIR" --pidfile "$DIR/redis-tls.pid" \
    --logfile "$DIR/redis-tls.log"
  wait_port redis-tls "$REDIS_TLS_PORT" 20
}

mysql_tls() {
  # mariadbd runs as mysql: its socket, pid file, log and key copy live in a
  # folder of its own.
  local data="$DIR/mariadb" run="$DIR/mariadb-run"
  [ "$FRESH" = 0 ] || stop_stale mariadb-tls "$run/mariadb.pid" "$MYSQL_TLS_PORT"
  if port_open "$MYSQL_TLS_PORT"; then
    say "MariaDB TLS already up on $MYSQL_TLS_PORT"
    return 0
  fi
  install -d -o mysql -g mysql -m 755 "$run"
  install -o mysql -g mysql -m 600 "$DIR/server-key.pem" "$run/server-key.pem"
  if [ ! -d "$data/mysql" ]; then
    say "initialising a MariaDB data directory in $data"
    rm -rf "$data"
    mkdir -p "$data"
    chown mysql:mysql "$data"
    mariadb-install-db --no-defaults --user=mysql --datadir="$data" \
      --auth-root-authentication-method=normal --skip-test-db >"$DIR/mariadb-install.log" 2>&1 ||
      { cat "$DIR/mariadb-install.log" >&2; return 1; }
  fi
  say "starting a TLS-only MariaDB on $MYSQL_TLS_PORT"
  # The port is closed, so a pid file left behind names no live server (at most
  # an unreaped zombie that start-stop-daemon would take for one).
  rm -f "$run/mariadb.pid"
  # Sockets are secure transport, so the socket stays usable for set-up.
  start-stop-daemon --start --background --pidfile "$run/mariadb.pid" \
    --exec /usr/sbin/mariadbd -- --no-defaults --user=mysql --datadir="$data" \
    --port="$MYSQL_TLS_PORT" --bind-address=127.0.0.1 --socket="$run/mariadb.sock" \
    --pid-file="$run/mariadb.pid" --log-error="$run/mariadb.log" \
    --skip-log-bin --innodb-buffer-pool-size=32M \
    --ssl-cert="$DIR/server.pem" --ssl-key="$run/server-key.pem" --ssl-ca="$DIR/ca.pem" \
    --require-secure-transport=ON
  wait_port mariadb-tls "$MYSQL_TLS_PORT" 60 || { tail -20 "$run/mariadb.log" >&2; return 1; }
  mariadb --no-defaults --socket="$run/mariadb.sock" -uroot <<'SQL'
CREATE USER IF NOT EXISTS 'ordermon'@'%' IDENTIFIED BY 'ordermon';
GRANT ALL PRIVILEGES ON *.* TO 'ordermon'@'%';
CREATE DATABASE IF NOT EXISTS ordermon;
SQL
}

main() {
  command -v openssl >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssl >&2
  certificates
  postgres_tls
  redis_tls
  mysql_tls
  local ca="$DIR/ca.pem"
  printf 'export %s=%q\n' \
    ORDERMON_TEST_TLS_CA "$ca" \
    ORDERMON_TEST_TLS_WRONG_CA "$DIR/wrong-ca.pem" \
    ORDERMON_TEST_PG_TLS_URL "postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=verify-full&sslrootcert=$ca" \
    ORDERMON_TEST_MYSQL_TLS_URL "mysql://ordermon:ordermon@127.0.0.1:$MYSQL_TLS_PORT/ordermon?ssl-mode=VERIFY_IDENTITY&ssl-ca=$ca" \
    ORDERMON_TEST_REDIS_TLS_URL "rediss://127.0.0.1:$REDIS_TLS_PORT/"
}

main "$@"
