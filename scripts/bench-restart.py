#!/usr/bin/env python3
"""Restart with many active users: how long until every monitor runs again.

Starts the release monitor-server on a fresh PostgreSQL database, creates
USERS traders through the API (each funded, with a price alert and a
mean-reversion strategy on one of 100 instruments), waits until every user is
monitored, stops the server with SIGTERM, starts a new process and polls
`GET /status` every 100 ms until `monitors` reaches USERS again. Prints the
seeding rate, the shutdown time, the time from the new process's start to
all monitors running (issue 19's goal at 50,000 users: <= 10 s) and the
restarted server's resident memory then and 10 s later.

    cargo build --release -p ordermon --bin monitor-server
    scripts/bench-restart.py [USERS]          # default 50000

Environment: ORDERMON_TEST_POSTGRES_URL (default
postgres://postgres@127.0.0.1:5432/postgres), PORT (default 18091),
SERVER_BIN (default target/release/monitor-server), CLIENTS (default 32),
KEEP=1 (keep the database afterwards), REUSE=1 (skip the seeding: restart on
the database a KEEP=1 run left), RESTART_LOG (log level of the restarted
server, default warn).
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

USERS = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
PG = os.environ.get("ORDERMON_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PORT = int(os.environ.get("PORT", "18091"))
SERVER_BIN = os.environ.get("SERVER_BIN", "target/release/monitor-server")
CLIENTS = int(os.environ.get("CLIENTS", "32"))
SECRET = "bench-restart-secret-0123456789abcdef"
DB = "ordermon_bench_restart"
ADMIN = "bench-admin"
INSTRUMENTS = [f"I{i:03d}.SIM" for i in range(100)]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(sub: str, role: str) -> str:
    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"sub": sub, "role": role, "iat": now, "exp": now + 7200}).encode())
    signed = f"{header}.{claims}".encode()
    sig = b64(hmac.new(SECRET.encode(), signed, hashlib.sha256).digest())
    return f"{header}.{claims}.{sig}"


def start(work: str, log_name: str, level: str = "warn") -> subprocess.Popen:
    env = dict(os.environ)
    env.update({
        "ORDERMON_DATABASE__URL": f"{PG.rsplit('/', 1)[0]}/{DB}",
        "ORDERMON_AUTH__JWT_SECRET": SECRET,
        "ORDERMON_HTTP__ADDR": f"127.0.0.1:{PORT}",
        "ORDERMON_LOGS__DIR": os.path.join(work, "logs"),
        "ORDERMON_LOGS__LEVEL": level,
        "ORDERMON_HTTP__RATE_LIMIT_PER_USER": "0",
        "ORDERMON_AUTH__BOOTSTRAP_ADMIN": ADMIN,
        "ORDERMON_ENGINE__VENUE": "external",
        "ORDERMON_DEMO__INSTRUMENTS": "false",
        "ORDERMON_DEMO__USERS": "false",
    })
    log = open(os.path.join(work, log_name), "w")
    return subprocess.Popen([SERVER_BIN, "serve"], env=env, stdout=log, stderr=log)


class Api:
    def __init__(self, tok: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        self.headers = {"Authorization": f"Bearer {tok}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body=None):
        for attempt in range(5):
            try:
                self.conn.request(method, path, body=None if body is None else json.dumps(body),
                                  headers=self.headers)
                r = self.conn.getresponse()
                data = r.read()
                return r.status, data
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
                time.sleep(0.2 * (attempt + 1))
        raise RuntimeError(f"{method} {path}: no answer")


def must(status_data, ok=(200, 201)):
    status, data = status_data
    if status not in ok:
        raise RuntimeError(f"{status}: {data[:300]!r}")


def monitors(api: Api) -> int:
    try:
        status, data = api.call("GET", "/status")
    except RuntimeError:
        return -1
    return json.loads(data).get("monitors", -1) if status == 200 else -1


def rss_mb(pid: int) -> int:
    """The resident memory of a process, in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return -1


def wait_ready(deadline_s: float) -> bool:
    end = time.time() + deadline_s
    while time.time() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=2)
            c.request("GET", "/health/live")
            if c.getresponse().status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def seed(first: int, last: int, tok: str, errors: list):
    api = Api(tok)
    try:
        for u in range(first, last):
            user = f"r{u}"
            inst = INSTRUMENTS[u % len(INSTRUMENTS)]
            must(api.call("POST", "/api/v1/users", {"id": user, "name": user}))
            must(api.call("POST", f"/api/v1/users/{user}/cash",
                          {"currency": "USD", "amount": "100000", "reason": "seed"}))
            must(api.call("POST", f"/api/v1/strategies?user_id={user}",
                          {"id": "alert", "type": "price_alert", "name": "alert", "instruments": [inst],
                           "params": {"level": "1000", "direction": "above", "severity": "info"}}))
            must(api.call("POST", f"/api/v1/strategies?user_id={user}",
                          {"id": "mr", "type": "mean_reversion", "name": "mr", "instruments": [inst],
                           "params": {"window": 20, "threshold_pct": "0.002", "quantity": "1",
                                      "max_position": "5"}}))
    except Exception as e:  # noqa: BLE001 (reported, the run fails)
        errors.append(f"r{first}..: {e}")


def main():
    reuse = os.environ.get("REUSE") == "1"
    if not reuse:
        subprocess.run(["psql", PG, "-q", "-c", f"DROP DATABASE IF EXISTS {DB}", "-c",
                        f"CREATE DATABASE {DB}"], check=True)
    work = tempfile.mkdtemp(prefix="bench-restart-")
    tok = token(ADMIN, "admin")
    server = start(work, "server-1.log")
    try:
        if not wait_ready(120):
            raise SystemExit("the server did not start")
        api = Api(tok)
        for i in [] if reuse else INSTRUMENTS:
            must(api.call("POST", "/api/v1/instruments",
                          {"id": i, "quote_currency": "USD", "tick_size": "0.01", "lot_size": "1",
                           "min_quantity": "1"}))
        t0 = time.time()
        errors: list = []
        step = (USERS + CLIENTS - 1) // CLIENTS
        threads = [] if reuse else [
            threading.Thread(target=seed, args=(k, min(k + step, USERS), tok, errors))
            for k in range(0, USERS, step)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise SystemExit(f"seeding failed: {errors[:3]}")
        seeded = time.time() - t0
        print(f"seeded {USERS} users x 2 strategies in {seeded:.1f} s ({USERS * 4 / seeded:.0f} requests/s)")
        end = time.time() + 120
        while monitors(api) < USERS and time.time() < end:
            time.sleep(0.5)
        before = monitors(api)
        print(f"monitors running before the restart: {before}")
        # Fresh statistics, as autovacuum keeps them on a production server
        # (a test machine may run PostgreSQL without it): planned on the
        # empty tables' statistics, a restart's bulk reads pick the wrong
        # indexes.
        subprocess.run(["psql", f"{PG.rsplit('/', 1)[0]}/{DB}", "-q", "-c", "ANALYZE"], check=True)
        t1 = time.time()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
        print(f"SIGTERM to exit: {time.time() - t1:.2f} s (exit {server.returncode})")
        t2 = time.time()
        server = start(work, "server-2.log", os.environ.get("RESTART_LOG", "warn"))
        if not wait_ready(60):
            raise SystemExit("the restarted server did not start")
        listening = time.time() - t2
        api = Api(tok)
        seen = -1
        while time.time() - t2 < 120:
            seen = monitors(api)
            if seen >= before:
                break
            time.sleep(0.1)
        ready = time.time() - t2
        print(f"restart: listening after {listening:.2f} s, {seen} monitors running after {ready:.2f} s")
        rss_ready = rss_mb(server.pid)
        time.sleep(10)
        print(f"restarted server's RSS: {rss_ready} MB when every monitor ran, {rss_mb(server.pid)} MB 10 s later")
        with open(os.path.join(work, "server-2.log")) as f:
            lines = sum(1 for _ in f)
        print(f"lines the restarted server logged: {lines} (in {work})")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        if os.environ.get("KEEP") != "1":
            subprocess.run(["psql", PG, "-q", "-c", f"DROP DATABASE IF EXISTS {DB}"], check=False)


if __name__ == "__main__":
    main()
