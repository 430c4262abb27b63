#!/usr/bin/env python3
"""Backpressure through meshproxy's inbound listener: a slow reader and a slow uploader.

    raw-socket client -> meshproxy --inbound -> nginx

nginx serves `/big`, a sparse 1 GiB file, as fast as the proxy takes it; the client reads it at
about 1 MiB/s (64 KiB at a time, with a small SO_RCVBUF). If the proxy kept reading the upstream
whatever the client took, its memory would grow by the difference (~hundreds of MB a second on
loopback). `/upload` goes through nginx (which reads the whole body as fast as it can, into a
temp file) to a second nginx server that answers with the Content-Length it got; the client
writes the body at about 1 MiB/s. meshproxy's RSS is sampled every second. Checks:

  * slow download: status 200, the reader got data at about its own pace, max RSS < 40 MB;
  * paused reader: the reader stops reading for 5 s; RSS stays flat (grows < 8 MB) and under
    40 MB; when it reads again, data still comes;
  * slow upload: max RSS < 40 MB, and nginx answered 200 with every byte sent counted;
  * afterwards a plain GET on a new connection is answered 200.

    python3 Tests/Peers/backpressure_peer.py          # QUICK: 8 s per phase
    python3 Tests/Peers/backpressure_peer.py --full   # 30 s per phase
"""
import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerlib import Proxy, Report, metric_sum, start_nginx  # noqa: E402

MiB = 1024 * 1024
BIG_SIZE = 1024 * MiB          # the response: only a fraction is read
RATE = 1 * MiB                 # bytes per second, reading and writing
CHUNK = 64 * 1024
CLIENT_BUFFER = 32 * 1024      # the client's SO_RCVBUF / SO_SNDBUF
RSS_LIMIT_MB = 40
PAUSE_SECONDS = 5
PAUSE_GROWTH_LIMIT_MB = 8
IO_TIMEOUT = 10                # no single recv/send may block longer than this

NGINX_CONF = r"""
    server {
        listen 127.0.0.1:{port};
        access_log off;
        client_max_body_size 0;
        location = /big { root {dir}/www; }
        location = /small { return 200 "ok\n"; }
        # nginx reads the whole body (into a temp file) before passing it on: a fast reader.
        location = /upload {
            proxy_pass http://unix:{dir}/sink.sock:;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
    server {
        listen unix:{dir}/sink.sock;
        access_log off;
        client_max_body_size 0;
        location / { return 200 "$content_length\n"; }
    }
"""


def mb(kb):
    return kb / 1024


class Sampler:
    """meshproxy's RSS, sampled at most once a second when `tick` is called."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.samples = []
        self.next = 0.0

    def tick(self, force=False):
        now = time.time()
        if force or now >= self.next:
            self.next = now + 1.0
            if self.proxy.proc.poll() is None:
                self.samples.append(self.proxy.rss_kb())
        return self.samples[-1] if self.samples else 0

    def line(self):
        s = self.samples or [0]
        shown = s if len(s) <= 12 else s[:6] + [None] + s[-3:]
        return (f"{len(self.samples)} samples, min {mb(min(s)):.1f} MB, max {mb(max(s)):.1f} MB "
                f"[{', '.join('...' if x is None else f'{mb(x):.1f}' for x in shown)}]")


def connect(addr, rcvbuf=None, sndbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if sndbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    s.settimeout(IO_TIMEOUT)
    s.connect(addr)
    return s


def read_head(s, limit=64 * 1024):
    """(status, head bytes, body bytes already read). status is None on a close/timeout."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < limit:
        try:
            chunk = s.recv(4096)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None, data, b""
    parts = head.split(b" ", 2)
    try:
        return int(parts[1]), head, rest
    except (IndexError, ValueError):
        return None, head, rest


def paced_read(s, sampler, seconds, start_bytes=0, pause=None):
    """Reads at RATE for `seconds`; `pause` = (after_s, for_s) stops reading for a while.
    Returns (bytes read, RSS samples from the pause's start to its end, bytes read after it, error)."""
    got = start_bytes
    t0 = time.time()
    pause_start = pause_end = None
    if pause:
        pause_start, pause_end = t0 + pause[0], t0 + pause[0] + pause[1]
    first = last = None  # indexes in sampler.samples: the pause's first and last samples
    after_pause = 0
    error = None
    for _ in range(1_000_000):  # bounded; the clock ends it long before
        now = time.time()
        if now - t0 >= seconds:
            break
        if pause and pause_start <= now < pause_end:
            if first is None:
                sampler.tick(force=True)
                first = len(sampler.samples) - 1
            else:
                sampler.tick()
            time.sleep(max(0.0, min(0.2, pause_end - now)))
            continue
        if pause and now >= pause_end and first is not None and last is None:
            sampler.tick(force=True)
            last = len(sampler.samples)
        sampler.tick()
        # Budget: RATE bytes per second of reading time (the pause does not count).
        paused_for = (min(now, pause_end) - pause_start) if pause and now >= pause_start else 0
        want = int(RATE * (now - t0 - paused_for)) + start_bytes - got
        if want < CHUNK:  # read whole chunks: wait until the budget allows one
            time.sleep(min(0.2, (CHUNK - want) / RATE))
            continue
        try:
            chunk = s.recv(min(CHUNK, want))
        except OSError as e:
            error = f"recv: {e}"
            break
        if not chunk:
            error = "the proxy closed the connection"
            break
        got += len(chunk)
        if pause and now >= pause_end:
            after_pause += len(chunk)
    paused = sampler.samples[first:last] if first is not None else []
    return got, paused, after_pause, error


def upstream_read(proxy):
    """Bytes meshproxy has read from the app (nginx) so far."""
    try:
        return metric_sum(proxy.metrics(), "tcp_read_bytes_total", direction="inbound", peer="dst")
    except OSError:
        return float("nan")


def plain_get(addr, path="/small"):
    try:
        s = connect(addr)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: peer.test\r\nConnection: close\r\n\r\n".encode())
        status, _, _ = read_head(s)
        s.close()
        return status
    except OSError as e:
        return f"error {e}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="30 s per phase instead of 8")
    opts = parser.parse_args()
    seconds = 30 if opts.full else 8

    report = Report()
    print(f"# {'FULL' if opts.full else 'QUICK'}: {seconds} s per phase, {RATE // MiB} MiB/s, "
          f"{CHUNK // 1024} KiB reads/writes, client buffers {CLIENT_BUFFER // 1024} KiB, /big is {BIG_SIZE // MiB} MiB",
          flush=True)
    nginx_port, nginx_dir = start_nginx(NGINX_CONF)
    os.makedirs(os.path.join(nginx_dir, "www"), exist_ok=True)
    with open(os.path.join(nginx_dir, "www", "big"), "wb") as f:
        f.truncate(BIG_SIZE)  # sparse: no disk used
    proxy = Proxy("--inbound", "127.0.0.1:0", "--app", f"127.0.0.1:{nginx_port}", "--admin", "127.0.0.1:0")
    try:
        inbound = proxy.addr("inbound")
        status = plain_get(inbound)
        rss_idle = proxy.rss_kb()
        print(f"# RSS after one plain GET: {mb(rss_idle):.1f} MB", flush=True)
        report.check(status == 200, f"a plain GET through the proxy is answered 200 before the tests ({status})")

        # --- slow download -----------------------------------------------------------------------
        sampler = Sampler(proxy)
        sampler.tick(force=True)
        upstream_before = upstream_read(proxy)
        s = connect(inbound, rcvbuf=CLIENT_BUFFER)
        s.sendall(b"GET /big HTTP/1.1\r\nHost: peer.test\r\n\r\n")
        status, head, rest = read_head(s)
        got, _, _, error = (len(rest), [], 0, None) if status != 200 else paced_read(s, sampler, seconds, len(rest))
        sampler.tick(force=True)
        from_nginx = upstream_read(proxy) - upstream_before
        s.close()
        time.sleep(1)
        print(f"# slow download: status {status}, read {got / MiB:.1f} MiB in {seconds} s "
              f"({got / MiB / seconds:.2f} MiB/s){'; ' + error if error else ''}; the proxy read {from_nginx / MiB:.1f} MiB "
              f"from nginx meanwhile ({(from_nginx - got - len(head)) / MiB:.1f} MiB in flight: kernel buffers + proxy); "
              f"RSS {sampler.line()}; "
              f"after the reader left {mb(proxy.rss_kb()):.1f} MB", flush=True)
        report.check(status == 200 and error is None and got >= RATE * seconds * 0.25,
                     f"slow download: 200, {got / MiB:.1f} MiB read at the reader's pace "
                     f"(at least {RATE * seconds * 0.25 / MiB:.1f}){'; ' + error if error else ''}")
        peak = mb(max(sampler.samples or [0]))
        report.check(0 < peak < RSS_LIMIT_MB, f"slow download: max RSS {peak:.1f} MB < {RSS_LIMIT_MB} MB")

        # --- paused reader -----------------------------------------------------------------------
        sampler = Sampler(proxy)
        sampler.tick(force=True)
        upstream_before = upstream_read(proxy)
        s = connect(inbound, rcvbuf=CLIENT_BUFFER)
        s.sendall(b"GET /big HTTP/1.1\r\nHost: peer.test\r\n\r\n")
        status, head, rest = read_head(s)
        read_before = 2
        total = read_before + PAUSE_SECONDS + 2
        if status == 200:
            got, paused, after, error = paced_read(s, sampler, total, len(rest), pause=(read_before, PAUSE_SECONDS))
        else:
            got, paused, after, error = len(rest), [], 0, f"status {status}"
        sampler.tick(force=True)
        from_nginx = upstream_read(proxy) - upstream_before
        s.close()
        time.sleep(1)
        growth = mb(max(paused) - paused[0]) if paused else float("nan")
        peak = mb(max(sampler.samples or [0]))
        print(f"# paused reader: read {read_before} s, paused {PAUSE_SECONDS} s, read 2 s; {got / MiB:.1f} MiB in all, "
              f"{after / MiB:.2f} MiB after the pause; the proxy read {from_nginx / MiB:.1f} MiB from nginx; RSS during the pause "
              f"[{', '.join(f'{mb(x):.1f}' for x in paused)}] MB (growth {growth:.1f} MB); all samples {sampler.line()}; "
              f"after the reader left {mb(proxy.rss_kb()):.1f} MB{'; ' + error if error else ''}", flush=True)
        report.check(bool(paused) and growth < PAUSE_GROWTH_LIMIT_MB and 0 < peak < RSS_LIMIT_MB,
                     f"paused reader: RSS flat during the {PAUSE_SECONDS} s pause (grew {growth:.1f} MB, limit "
                     f"{PAUSE_GROWTH_LIMIT_MB}), max {peak:.1f} MB < {RSS_LIMIT_MB} MB")
        report.check(error is None and after > 0,
                     f"paused reader: data flows again after the pause ({after / MiB:.2f} MiB)"
                     f"{'; ' + error if error else ''}")

        # --- slow upload -------------------------------------------------------------------------
        size = RATE * seconds
        sampler = Sampler(proxy)
        sampler.tick(force=True)
        s = connect(inbound, sndbuf=CLIENT_BUFFER)
        s.sendall(f"POST /upload HTTP/1.1\r\nHost: peer.test\r\nContent-Length: {size}\r\n"
                  f"Content-Type: application/octet-stream\r\n\r\n".encode())
        sent = 0
        error = None
        t0 = time.time()
        block = bytes(range(256)) * (CHUNK // 256)
        for _ in range(1_000_000):  # bounded; the clock and the size end it long before
            now = time.time()
            if sent >= size or now - t0 > seconds + 30:
                break
            sampler.tick()
            budget = int(RATE * (now - t0)) - sent
            want = min(CHUNK, size - sent)
            if budget < want:  # write whole chunks: wait until the budget allows one
                time.sleep(min(0.2, (want - budget) / RATE))
                continue
            try:
                s.sendall(block[:want])
            except OSError as e:
                error = f"send: {e}"
                break
            sent += want
        elapsed = time.time() - t0
        body = b""
        status = None
        if error is None:
            s.settimeout(30)
            status, head, body = read_head(s)
            if status is not None:
                for _ in range(100):
                    if b"\n" in body:
                        break
                    try:
                        chunk = s.recv(4096)
                    except OSError:
                        break
                    if not chunk:
                        break
                    body += chunk
        sampler.tick(force=True)
        s.close()
        time.sleep(1)
        counted = body.strip().decode(errors="replace")
        peak = mb(max(sampler.samples or [0]))
        print(f"# slow upload: sent {sent / MiB:.1f} MiB in {elapsed:.1f} s ({sent / MiB / max(elapsed, 0.001):.2f} MiB/s); "
              f"status {status}, nginx counted {counted!r}; RSS {sampler.line()}; "
              f"after the uploader left {mb(proxy.rss_kb()):.1f} MB{'; ' + error if error else ''}", flush=True)
        report.check(status == 200 and counted == str(size),
                     f"slow upload: 200 and nginx read all {size:,} bytes (it counted {counted!r})"
                     f"{'; ' + error if error else ''}")
        report.check(0 < peak < RSS_LIMIT_MB, f"slow upload: max RSS {peak:.1f} MB < {RSS_LIMIT_MB} MB")

        # --- afterwards --------------------------------------------------------------------------
        status = plain_get(inbound)
        report.check(status == 200, f"afterwards a plain GET on a new connection is answered 200 ({status})")
        time.sleep(1)
        print(f"# RSS at the end, every client gone: {mb(proxy.rss_kb()):.1f} MB (it was {mb(rss_idle):.1f} MB "
              f"after the first GET)", flush=True)
        if proxy.proc.poll() is not None:
            report.check(False, f"meshproxy is still running (exit {proxy.proc.returncode})")
    finally:
        proxy.stop()
    report.finish()


if __name__ == "__main__":
    main()
