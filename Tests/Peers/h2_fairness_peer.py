#!/usr/bin/env python3
"""HTTP/2 fairness: clients that hold streams open must not make a polite client wait. Run
through meshproxy and through HAProxy in the same run, to the same nginx h2c upstream.

    greedy h2 clients (PyPI h2), each opening 100 POST streams whose bodies never end
    + one polite h2 client, 3 GETs one after another, 5 s each
        -> meshproxy --inbound      -> nginx (listen http2, http2_max_concurrent_streams 100)
        -> haproxy (proto h2 both sides) -> the same nginx

nginx waits for each greedy body (client_body_timeout 60 s), so every greedy stream holds one of
the 100 streams an upstream connection may carry. A proxy that puts every client's streams on one
upstream connection fills it with the greedy ones, and the polite request then waits behind them.

Checks: through meshproxy the polite client gets 3 of 3 answers (200) beside 2 greedy clients
and again beside 4; the greedy clients' streams are all still open upstream (the proxy did not
get rid of them to make room). Figures: the same counts through HAProxy, and the upstream
connections meshproxy opened.

    python3 Tests/Peers/h2_fairness_peer.py
"""
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerlib import Proxy, Report, free_port, metric_sum, spawn, start_nginx  # noqa: E402

import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
import h2.exceptions  # noqa: E402

GREEDY_STREAMS = 100
POLITE_REQUESTS = 3
POLITE_WAIT = 5.0

NGINX_CONF = r"""
    server {
        listen 127.0.0.1:{port} http2;
        http2_max_concurrent_streams 100;
        client_body_timeout 60s;
        location /hold { proxy_pass http://127.0.0.1:9/; }
        location / { return 200 "ok\n"; }
    }
"""


class H2Client:
    """One h2c connection (prior knowledge); a thread reads and answers what the peer sends."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.lock = threading.Lock()
        self.responses = {}   # stream id -> status
        self.ended = set()
        self.reset = set()
        self.closed = False
        with self.lock:
            self.conn.initiate_connection()
            self.sock.sendall(self.conn.data_to_send())
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        self.sock.settimeout(None)
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.closed = True
                return
            with self.lock:
                try:
                    events = self.conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    self.closed = True
                    return
                for e in events:
                    if isinstance(e, h2.events.ResponseReceived):
                        self.responses[e.stream_id] = dict(e.headers).get(":status")
                    elif isinstance(e, h2.events.StreamEnded):
                        self.ended.add(e.stream_id)
                    elif isinstance(e, h2.events.StreamReset):
                        self.reset.add(e.stream_id)
                    elif isinstance(e, h2.events.DataReceived):
                        self.conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                try:
                    self.sock.sendall(self.conn.data_to_send())
                except OSError:
                    pass

    def open(self, method, path, end_stream):
        with self.lock:
            sid = self.conn.get_next_available_stream_id()
            self.conn.send_headers(sid, [(":method", method), (":path", path), (":scheme", "http"),
                                         (":authority", "app"), ("content-type", "application/octet-stream")],
                                   end_stream=end_stream)
            self.sock.sendall(self.conn.data_to_send())
        return sid

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def greedy(port, streams=GREEDY_STREAMS):
    c = H2Client(port)
    time.sleep(0.2)
    opened = 0
    for _ in range(streams):
        try:
            c.open("POST", "/hold", end_stream=False)
            opened += 1
        except h2.exceptions.TooManyStreamsError:
            break
    return c, opened


def polite(port):
    """POLITE_REQUESTS GETs on one connection, one after another; how many were answered 200."""
    c = H2Client(port)
    answered = 0
    try:
        for _ in range(POLITE_REQUESTS):
            sid = c.open("GET", "/", end_stream=True)
            deadline = time.time() + POLITE_WAIT
            while time.time() < deadline and sid not in c.ended and sid not in c.reset and not c.closed:
                time.sleep(0.01)
            if c.responses.get(sid) == "200" and sid in c.ended:
                answered += 1
    finally:
        c.close()
    return answered


def start_haproxy(upstream_port):
    d = tempfile.mkdtemp(prefix="haproxy-peer-")
    port = free_port()
    cfg = os.path.join(d, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(f"""global
  nbthread 1
defaults
  mode http
  timeout connect 1s
  timeout client 60s
  timeout server 60s
frontend f
  bind 127.0.0.1:{port} proto h2
  default_backend b
backend b
  server s 127.0.0.1:{upstream_port} proto h2
""")
    proc = spawn(["haproxy", "-db", "-f", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("haproxy did not start")


def run(port, greedy_clients):
    """Greedy clients first, then the polite one beside them: (answered, streams the greedy opened, still open)."""
    held = [greedy(port) for _ in range(greedy_clients)]
    time.sleep(0.5)
    answered = polite(port)
    open_now = sum(opened - len(c.ended | c.reset) for c, opened in held)
    for c, _ in held:
        c.close()
    return answered, sum(o for _, o in held), open_now


def main():
    report = Report()
    nginx_port, _ = start_nginx(NGINX_CONF)
    proxy = Proxy("--inbound", "127.0.0.1:0", "--app", f"127.0.0.1:{nginx_port}", "--admin", "127.0.0.1:0")
    haproxy, haproxy_port = start_haproxy(nginx_port)
    try:
        _, inbound = proxy.addr("inbound")
        for greedy_clients in (2, 4):
            answered, opened, still = run(inbound, greedy_clients)
            ha_answered, ha_opened, _ = run(haproxy_port, greedy_clients)
            print(f"# {greedy_clients} greedy clients ({opened} streams held): polite answered "
                  f"{answered}/{POLITE_REQUESTS} through meshproxy, {ha_answered}/{POLITE_REQUESTS} through haproxy "
                  f"({ha_opened} streams held)", flush=True)
            report.check(opened == greedy_clients * GREEDY_STREAMS, f"{greedy_clients} greedy clients opened {opened} streams through meshproxy")
            report.check(still == opened, f"their streams stayed open ({still} of {opened}): room was not made by cutting them")
            report.check(answered == POLITE_REQUESTS,
                         f"beside {greedy_clients} greedy clients the polite one got {answered}/{POLITE_REQUESTS} answers through meshproxy")
            time.sleep(0.5)
        opened_upstream = metric_sum(proxy.metrics(), "tcp_open_total", direction="inbound", peer="dst")
        print(f"# meshproxy opened {opened_upstream:.0f} upstream connections", flush=True)
        report.check(proxy.proc.poll() is None, "meshproxy is still running")
    finally:
        proxy.stop()
        haproxy.kill()
    report.finish()


if __name__ == "__main__":
    main()
