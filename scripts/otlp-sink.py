#!/usr/bin/env python3
"""A minimal OTLP/HTTP trace sink for benchmarks: answers every POST with 200
and an empty ExportTraceServiceResponse (an empty protobuf message is zero
bytes), and prints the requests and bytes it took when stopped.

    scripts/otlp-sink.py 4318 &
    ORDERMON_TELEMETRY__OTLP__ENDPOINT=http://127.0.0.1:4318 monitor-server

The test suite decodes what it receives (tests/src/otlp.rs); this one only
counts, so that it costs the server's machine as little as possible.
"""
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

requests = 0
received = 0


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 (the http.server naming)
        global requests, received
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        requests += 1
        received += length
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 4318
    server = ThreadingHTTPServer(("127.0.0.1", port), Sink)

    def stop(*_):
        print(f"otlp-sink: {requests} export requests, {received} bytes", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()


if __name__ == "__main__":
    main()
