#!/usr/bin/env python3
"""HTTP/2 (h2c) load through meshproxy's inbound listener with h2load, to an nginx h2c upstream.

    h2load (4 clients x 4 streams) -> meshproxy --inbound -> nginx (listen ... http2)

nginx keeps its default `keepalive_requests 1000`: after 1,000 streams on a connection it sends
GOAWAY, so the proxy has to open a new upstream connection about every 1,000 requests and move
the new streams there. The first round warms the proxy up (allocator pools, metric series, the
upstream pool); then RSS is recorded and the other rounds run. Checks:

  * each round: every request succeeded (h2load's "succeeded" and "2xx" both equal N);
  * RSS after the last round is less than 10 MB above RSS after the warm-up round;
  * the proxy opened a handful of upstream connections (its own tcp_open_total,
    direction="inbound", peer="dst"): at most N_total/1000 + 8, not one per stream.

Figures (`# ` lines): req/s of each round (h2load's), RSS, upstream connections opened, TIME_WAIT
sockets towards and from the nginx port (`ss`).

    python3 Tests/Peers/h2load_peer.py           # QUICK: see QUICK below
    python3 Tests/Peers/h2load_peer.py --full    # warm-up 20,000, then 1,000,000 requests
    python3 Tests/Peers/h2load_peer.py --rounds 3 --requests 20000   # any other size
"""
import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerlib import Proxy, Report, metric_samples, metric_sum, start_nginx  # noqa: E402

# QUICK: a warm-up round and two measured rounds. The figure is 3 x 20,000; a debug build
# of meshproxy does ~600 req/s on a busy 2-core machine, so 20,000 a round would take ~100 s.
# 6,000 a round still crosses nginx's GOAWAY (every 1,000 streams) 18 times.
QUICK_ROUNDS = [6_000, 6_000, 6_000]
FULL_ROUNDS = [20_000, 1_000_000]
KEEPALIVE_REQUESTS = 1000   # nginx's default: GOAWAY after this many streams on a connection
RSS_GROWTH_LIMIT_MB = 10
CONNECTION_SLACK = 8

NGINX_CONF = r"""
    server {
        listen 127.0.0.1:{port} http2;
        access_log off;
        location / { return 200 "ok\n"; }
    }
"""


def h2load(port, n, clients=4, streams=4):
    """Runs h2load; returns (dict of figures, full output)."""
    args = ["h2load", "-n", str(n), "-c", str(clients), "-m", str(streams), "-t", "1",
            f"http://127.0.0.1:{port}/"]
    # Generous: a debug proxy on a busy machine does a few hundred req/s at worst.
    timeout = 120 + n / 100
    try:
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        out = r.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") + f"\n(h2load killed after {timeout:.0f} s)"
    figures = {}
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
    if m:
        seconds = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
        figures["seconds"], figures["rps"] = seconds, float(m.group(3))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", out)
    if m:
        for key, value in zip(["total", "started", "done", "succeeded", "failed", "errored", "timeout"], m.groups()):
            figures[key] = int(value)
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if m:
        for key, value in zip(["2xx", "3xx", "4xx", "5xx"], m.groups()):
            figures[key] = int(value)
    return figures, out


def time_wait(port):
    """(sockets in TIME_WAIT whose remote port is `port`, ... whose local port is `port`)."""
    def count(direction):
        try:
            r = subprocess.run(["ss", "-Htan", "state", "time-wait", f"( {direction} = :{port} )"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10)
            return len([line for line in r.stdout.decode().splitlines() if line.strip()])
        except (OSError, subprocess.TimeoutExpired):
            return -1
    return count("dport"), count("sport")


def upstream_opened(proxy):
    return int(metric_sum(proxy.metrics(), "tcp_open_total", direction="inbound", peer="dst"))


def failures(proxy):
    """meshproxy's own count of failed inbound responses, by status code and error."""
    try:
        samples = metric_samples(proxy.metrics(), "response_total", direction="inbound", classification="failure")
    except OSError as e:
        return f"(no metrics: {e})"
    parts = [f"status_code={labels.get('status_code', '')!r} error={labels.get('error', '')!r}: {value:.0f}"
             for labels, value in samples]
    return "; ".join(parts) or "none"


def mb(kb):
    return f"{kb / 1024:.1f} MB"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the issue's sizes: warm-up 20,000, then 1,000,000")
    parser.add_argument("--rounds", type=int, help="number of rounds (the first is the warm-up)")
    parser.add_argument("--requests", type=int, help="requests per round")
    opts = parser.parse_args()
    rounds = list(FULL_ROUNDS if opts.full else QUICK_ROUNDS)
    if opts.rounds or opts.requests:
        rounds = [opts.requests or rounds[0]] * (opts.rounds or len(rounds))
    if len(rounds) < 2:
        sys.exit("need at least two rounds: a warm-up and a measured one")

    report = Report()
    print(f"# {'FULL' if opts.full else 'QUICK'}: rounds of {', '.join(f'{n:,}' for n in rounds)} requests "
          f"(the first is the warm-up), h2load -c 4 -m 4 -t 1, h2c to nginx (GOAWAY every {KEEPALIVE_REQUESTS:,} streams)",
          flush=True)
    nginx_port, _ = start_nginx(NGINX_CONF)
    proxy = Proxy("--inbound", "127.0.0.1:0", "--app", f"127.0.0.1:{nginx_port}", "--admin", "127.0.0.1:0")
    try:
        _, inbound = proxy.addr("inbound")
        rss_start = proxy.rss_kb()
        rss_warm = None
        rss_peak = rss_start
        total = 0
        for i, n in enumerate(rounds):
            label = "warm-up" if i == 0 else f"round {i + 1}"
            t0 = time.time()
            fig, out = h2load(inbound, n)
            total += n
            rss = proxy.rss_kb()
            rss_peak = max(rss_peak, rss)
            if i == 0:
                rss_warm = rss
            opened = upstream_opened(proxy)
            tw_to, tw_from = time_wait(nginx_port)
            print(f"# {label}: {n:,} requests in {time.time() - t0:.1f} s, {fig.get('rps', 0):,.0f} req/s (h2load); "
                  f"succeeded {fig.get('succeeded', '?')}, failed {fig.get('failed', '?')}, errored {fig.get('errored', '?')}, "
                  f"2xx {fig.get('2xx', '?')}, 5xx {fig.get('5xx', '?')}; RSS {mb(rss)}; "
                  f"upstream connections opened so far {opened}; TIME_WAIT to nginx port {tw_to}, from it {tw_from}",
                  flush=True)
            ok = fig.get("succeeded") == n and fig.get("2xx") == n
            if not report.check(ok, f"{label}: all {n:,} requests succeeded with 2xx "
                                    f"(succeeded {fig.get('succeeded', '?')}, 2xx {fig.get('2xx', '?')}, "
                                    f"failed {fig.get('failed', '?')}, errored {fig.get('errored', '?')})"):
                tail = [line for line in out.splitlines() if not line.startswith("progress:")][-12:]
                for line in tail:
                    print(f"#   h2load: {line}")
                print(f"#   meshproxy's failures so far: {failures(proxy)}")
            if proxy.proc.poll() is not None:
                report.check(False, f"meshproxy is still running after {label} (exit {proxy.proc.returncode})")
                break

        rss_end = proxy.rss_kb() if proxy.proc.poll() is None else rss_peak
        print(f"# RSS before {mb(rss_start)}, after warm-up ({rounds[0]:,}) {mb(rss_warm)}, "
              f"after {total:,} requests {mb(rss_end)} (peak sampled {mb(rss_peak)})", flush=True)
        growth = (rss_end - rss_warm) / 1024
        report.check(growth < RSS_GROWTH_LIMIT_MB,
                     f"RSS grew {growth:.1f} MB after the warm-up (limit {RSS_GROWTH_LIMIT_MB} MB over "
                     f"{total - rounds[0]:,} requests)")

        opened = upstream_opened(proxy) if proxy.proc.poll() is None else -1
        limit = total // KEEPALIVE_REQUESTS + CONNECTION_SLACK
        tw_to, tw_from = time_wait(nginx_port)
        print(f"# upstream (proxy -> nginx) connections opened: {opened} for {total:,} requests "
              f"(nginx closes each after {KEEPALIVE_REQUESTS:,}); TIME_WAIT sockets to nginx port {tw_to}, from it {tw_from}",
              flush=True)
        report.check(0 < opened <= limit,
                     f"a handful of upstream connections: {opened} opened for {total:,} requests (at most {limit})")
    finally:
        proxy.stop()
    report.finish()


if __name__ == "__main__":
    main()
