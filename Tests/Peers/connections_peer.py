#!/usr/bin/env python3
"""Many idle connections, the connection cap and the two silence timeouts of meshproxy's inbound
listener (nginx is the app behind it).

  * --max-connections M: C > M silent connections are opened. About M stay open; the other C-M are
    closed by the proxy at once (the client sees EOF or a reset within seconds) and counted in
    meshproxy_connections_refused_total{direction="inbound"}. While they are held, the admin
    port's /ready and /metrics answer 200 within 2 s, and a new client is refused cleanly (closed
    or 503; not left hanging). When the clients leave, a GET is served again.
  * --detect-timeout-ms 1000: silent connections are closed within 5 s and counted
    (reason="detect"); with --header-timeout-ms 1000, one that sends half a head, and one that
    trickles a head that never ends (a slowloris), get 408 and are closed within 5 s; a request
    sent after 300 ms is served; once a request was seen the detection timer no longer applies.
  * --idle-timeout-ms 1000: a keep-alive connection left idle after a response is closed within
    5 s and counted (reason="idle"); one that keeps sending a request every 300 ms is not.

A flag the binary does not know is reported as `not ok` with meshproxy's message, and that part
is skipped.

    python3 Tests/Peers/connections_peer.py          # QUICK: C = 1,000, M = 500
    python3 Tests/Peers/connections_peer.py --full   # C = 20,000, M = 10,000
    python3 Tests/Peers/connections_peer.py --baseline   # the same clients, no new flag given
"""
import argparse
import os
import resource
import select
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerlib import Proxy, Report, metric_sum, start_nginx  # noqa: E402

NGINX_CONF = r"""
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:{port} backlog=4096;
        access_log off;
        client_max_body_size 0;
        location / { return 200 "ok\n"; }
        # nginx reads the whole body before it answers (it passes it on to itself).
        location = /upload { proxy_pass http://127.0.0.1:{port}/sink; }
    }
"""

CLOSE_WITHIN = 5.0      # seconds: "quickly" / "within 5 s"
ADMIN_WITHIN = 2.0
LONG_DETECT_MS = 600_000  # while holding silent connections for the cap test


def raise_nofile(want):
    """Soft limit up to the hard one; as root, the hard limit up to `want` too (meshproxy inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want and os.geteuid() == 0:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
        except (ValueError, OSError):
            pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def proc_nofile(pid):
    try:
        for line in open(f"/proc/{pid}/limits"):
            if line.startswith("Max open files"):
                return " / ".join(line.split()[3:5])
    except OSError:
        pass
    return "?"


def proc_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def start_proxy(report, what, app_port, *flags):
    """A meshproxy with `flags`, or None after a `not ok` carrying its complaint."""
    try:
        return Proxy("--inbound", "127.0.0.1:0", "--app", f"127.0.0.1:{app_port}", "--admin", "127.0.0.1:0", *flags)
    except Exception as e:  # noqa: BLE001 (RuntimeError with meshproxy's stderr, or OSError)
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        message = " | ".join(lines[:3])[:300]
        report.check(False, f"{what}: meshproxy {' '.join(flags)} did not start: {message}")
        return None


def proxy_notes(proxy):
    """meshproxy's stderr lines other than 'listening:' (warnings such as a low open-file limit)."""
    try:
        text = open(proxy.log_path, errors="replace").read()
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip() and "listening:" not in line][:5]


def is_closed(s):
    """True when the peer closed (EOF or reset); None when open; bytes when it sent something."""
    try:
        data = s.recv(4096, socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return True  # ECONNRESET and friends
    return True if data == b"" else data


class Watcher:
    """Client sockets that send nothing, polled for the proxy closing them."""

    def __init__(self):
        self.poller = select.poll()
        self.open = {}            # fd -> (socket, connect time)
        self.closed = []          # (connect time, close time); the socket itself is closed at once
        self.answered = 0         # sockets that got bytes before closing
        self.failed = []          # connect errors

    def add(self, s, t):
        self.open[s.fileno()] = (s, t)
        self.poller.register(s.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)

    def sweep(self, wait_ms=0):
        now = time.time()
        for fd, _ in self.poller.poll(wait_ms):
            entry = self.open.get(fd)
            if not entry:
                continue
            state = is_closed(entry[0])
            if state is None:
                continue
            if state is not True:
                self.answered += 1  # bytes: keep watching for the close
                continue
            self.poller.unregister(fd)
            del self.open[fd]
            # Closed here too, so the client needs file descriptors only for what the proxy
            # holds (about the cap), not for every connection it ever opened.
            entry[0].close()
            self.closed.append((entry[1], now))

    def close_all(self):
        for s, _ in self.open.values():
            s.close()
        self.open.clear()
        self.closed.clear()


def open_silent(addr, count, watcher, budget):
    """Opens `count` connections that send nothing (sweeping for closes as it goes)."""
    deadline = time.time() + budget
    for i in range(count):
        if time.time() > deadline:
            watcher.failed.append(f"gave up after {i} connections ({budget:.0f} s)")
            break
        s = socket.socket()
        s.settimeout(5)
        try:
            s.connect(addr)
        except OSError as e:
            watcher.failed.append(str(e))
            s.close()
            if len(watcher.failed) > 50:
                break
            continue
        s.setblocking(False)
        watcher.add(s, time.time())
        if i % 50 == 49:
            watcher.sweep()


def wait_until(watcher, closed_target, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline and len(watcher.closed) < closed_target:
        watcher.sweep(100)
    watcher.sweep(0)


def latencies(watcher):
    xs = sorted(c - t for t, c in watcher.closed)
    if not xs:
        return "none"
    return f"min {xs[0]:.2f} s, median {xs[len(xs) // 2]:.2f} s, max {xs[-1]:.2f} s"


def request_on(s, path="/", keep_alive=True, timeout=5.0):
    """Sends a GET on `s` and reads one response (Content-Length framed). Returns (status, error)."""
    s.settimeout(timeout)
    conn = "keep-alive" if keep_alive else "close"
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: peer.test\r\nConnection: {conn}\r\n\r\n".encode())
        data = b""
        deadline = time.time() + timeout
        while b"\r\n\r\n" not in data and time.time() < deadline:
            chunk = s.recv(4096)
            if not chunk:
                return None, "closed before a response" if not data else f"closed mid-head {data[:60]!r}"
            data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            return None, "no response head in time"
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length and time.time() < deadline:
            chunk = s.recv(4096)
            if not chunk:
                break
            body += chunk
        return status, None
    except socket.timeout:
        return None, f"timed out after {timeout:g} s (hung)"
    except (OSError, ValueError, IndexError) as e:
        return None, f"{type(e).__name__}: {e}"


def wait_closed(s, seconds):
    """Seconds until the peer closed `s` (EOF or reset), or None if it stayed open."""
    t0 = time.time()
    s.settimeout(0.2)
    while time.time() - t0 < seconds:
        try:
            data = s.recv(4096)
        except socket.timeout:
            continue
        except OSError:
            return time.time() - t0
        if data == b"":
            return time.time() - t0
    return None


def timed_get(url, timeout):
    t0 = time.time()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            r.read()
            return r.status, time.time() - t0
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}: {e}", time.time() - t0


def get_works(addr, tries_for=5.0):
    """(status of a GET on a fresh connection, tried until 200 for `tries_for` s, last error)."""
    deadline = time.time() + tries_for
    status, error = None, None
    for _ in range(100):
        s = socket.socket()
        try:
            s.settimeout(3)
            s.connect(addr)
            status, error = request_on(s, keep_alive=False, timeout=3)
        except OSError as e:
            status, error = None, str(e)
        finally:
            s.close()
        if status == 200 or time.time() > deadline:
            break
        time.sleep(0.2)
    return status, error


# ----------------------------------------------------------------------------------------------

def cap_test(report, app_port, clients, cap, baseline):
    flags = [] if baseline else ["--max-connections", str(cap), "--detect-timeout-ms", str(LONG_DETECT_MS)]
    print(f"# cap: {clients:,} silent connections, {'no --max-connections (the default)' if baseline else f'--max-connections {cap:,}'}"
          f"{'' if baseline else f' (and --detect-timeout-ms {LONG_DETECT_MS:,} so silence alone closes none)'}"
          f"{' [baseline: no flags]' if baseline else ''}", flush=True)
    proxy = start_proxy(report, "cap", app_port, *flags)
    if not proxy:
        return
    watcher = Watcher()
    try:
        for note in proxy_notes(proxy):
            print(f"# meshproxy says: {note}")
        print(f"# meshproxy open-file limit (soft / hard): {proc_nofile(proxy.proc.pid)}", flush=True)
        inbound = proxy.addr("inbound")
        admin_host, admin_port = proxy.addr("admin")
        rss0 = proxy.rss_kb()
        t0 = time.time()
        open_silent(inbound, clients, watcher, budget=max(60, clients / 50))
        connect_seconds = time.time() - t0
        expected_closed = max(0, clients - cap) if not baseline else 0
        slack = max(5, clients // 100)
        wait_until(watcher, expected_closed, CLOSE_WITHIN)
        time.sleep(1)  # anything closed beyond the excess would show up now
        watcher.sweep(0)
        held, closed = len(watcher.open), len(watcher.closed)
        rss = proxy.rss_kb()
        fds = proc_fds(proxy.proc.pid)
        print(f"# connected {held + closed:,} in {connect_seconds:.1f} s ({len(watcher.failed)} connect failures"
              f"{': ' + watcher.failed[0] if watcher.failed else ''}); the proxy closed {closed:,} "
              f"(latency after connect: {latencies(watcher)}; {watcher.answered} got bytes first), {held:,} still open",
              flush=True)
        print(f"# meshproxy RSS {rss0 / 1024:.1f} MB before, {rss / 1024:.1f} MB with {held:,} held "
              f"({(rss - rss0) / max(held, 1):.1f} KB per held connection); open fds {fds:,}", flush=True)
        if baseline:
            report.check(held + closed == clients and closed == 0,
                         f"baseline: all {clients:,} connections accepted and held ({held:,} open, {closed:,} closed)")
        else:
            report.check(cap - slack <= held <= cap and not watcher.failed,
                         f"about {cap:,} connections stay open: {held:,} (allowed {cap - slack:,}..{cap:,}; "
                         f"{len(watcher.failed)} connect failures)")
            report.check(closed >= expected_closed - slack,
                         f"the {expected_closed:,} beyond the cap are closed within {CLOSE_WITHIN:g} s: {closed:,} closed "
                         f"({latencies(watcher)})")

        for path in ("/ready", "/metrics"):
            status, took = timed_get(f"http://{admin_host}:{admin_port}{path}", timeout=ADMIN_WITHIN + 3)
            report.check(status == 200 and took < ADMIN_WITHIN,
                         f"admin {path} answers while {held:,} connections are held: {status} in {took:.2f} s "
                         f"(limit {ADMIN_WITHIN:g} s)")

        if not baseline:
            s = socket.socket()
            try:
                s.settimeout(5)
                s.connect(inbound)
                status, error = request_on(s, keep_alive=False, timeout=CLOSE_WITHIN)
            except OSError as e:
                status, error = None, f"connect: {e}"
            finally:
                s.close()
            clean = status == 503 or (status is None and error and not error.startswith("timed out"))
            report.check(clean, f"a new client while the cap is reached is refused cleanly (closed or 503): "
                                f"{status if status else error}")

            metrics = proxy.metrics()
            refused = metric_sum(metrics, "meshproxy_connections_refused_total", direction="inbound")
            report.check(refused >= expected_closed - slack,
                         f"meshproxy_connections_refused_total{{direction=\"inbound\"}} {refused:,.0f} "
                         f"(at least {expected_closed - slack:,})")

        watcher.close_all()
        status, error = get_works(inbound)
        report.check(status == 200, f"after the clients leave, a GET is served: {status if status else error}")
        time.sleep(1)
        print(f"# meshproxy RSS after the clients left: {proxy.rss_kb() / 1024:.1f} MB; open fds {proc_fds(proxy.proc.pid)}",
              flush=True)
    finally:
        watcher.close_all()
        proxy.stop()


def detect_test(report, app_port, silent, baseline):
    flags = [] if baseline else ["--detect-timeout-ms", "1000", "--header-timeout-ms", "1000"]
    print(f"# detect: --detect-timeout-ms 1000 --header-timeout-ms 1000, {silent} silent connections, one trickling a head"
          f"{' [baseline: no flags]' if baseline else ''}", flush=True)
    proxy = start_proxy(report, "detect timeout", app_port, *flags)
    if not proxy:
        return
    watcher = Watcher()
    trickler = partial = None
    try:
        inbound = proxy.addr("inbound")
        open_silent(inbound, silent, watcher, budget=60)
        # One connection sends the start of a head (request line and Host) and then nothing.
        partial = Watcher()
        p = socket.socket()
        p.settimeout(5)
        p.connect(inbound)
        p.sendall(b"GET / HTTP/1.1\r\nHost: peer.test\r\n")
        p.setblocking(False)
        partial.add(p, time.time())
        # One connection trickles a request head that never ends: a header line every 200 ms.
        trickler = socket.socket()
        trickler.settimeout(5)
        trickler.connect(inbound)
        t_trickle = time.time()
        trickle_closed = None
        sent_lines = 0
        trickler.settimeout(0.2)
        for i in range(int(CLOSE_WITHIN / 0.2) + 5):  # bounded: at most ~CLOSE_WITHIN seconds
            if time.time() - t_trickle > CLOSE_WITHIN:
                break
            try:
                trickler.sendall(b"GET / HTTP/1.1\r\nHost: peer.test\r\n" if i == 0 else f"X-Slow-{i}: 1\r\n".encode())
                sent_lines += 1
            except OSError:
                trickle_closed = time.time() - t_trickle
                break
            try:
                data = trickler.recv(4096)
                if data == b"" or data:  # closed, or an answer (400/408) before closing
                    trickle_closed = time.time() - t_trickle
                    break
            except socket.timeout:
                pass
            except OSError:
                trickle_closed = time.time() - t_trickle
                break
            watcher.sweep(0)
            partial.sweep(0)
        wait_until(watcher, silent, CLOSE_WITHIN)
        wait_until(partial, 1, max(0.0, CLOSE_WITHIN - (time.time() - t_trickle)))
        partial_closed = partial.closed[0][1] - partial.closed[0][0] if partial.closed else None
        closed = len(watcher.closed)
        print(f"# detect: {closed}/{silent} silent connections closed ({latencies(watcher)}); the trickler "
              f"{'was closed after %.2f s' % trickle_closed if trickle_closed is not None else 'was not closed'} "
              f"({sent_lines} lines sent); the partial head "
              f"{'was closed after %.2f s' % partial_closed if partial_closed is not None else 'was not closed'}",
              flush=True)
        if baseline:
            early = sum(1 for _, t, c in watcher.closed if c - t < CLOSE_WITHIN)
            report.check(early == 0, f"baseline: without the flag no silent connection is closed within "
                                     f"{CLOSE_WITHIN:g} s ({early} were; the default timeout is longer)")
        else:
            report.check(closed == silent and not watcher.failed,
                         f"silent connections are closed within {CLOSE_WITHIN:g} s: {closed}/{silent} ({latencies(watcher)})")
            report.check(partial_closed is not None,
                         f"a connection that sends half a request head and then nothing is closed within "
                         f"{CLOSE_WITHIN:g} s ({'%.2f s' % partial_closed if partial_closed is not None else 'still open'})")
            report.check(trickle_closed is not None,
                         f"a connection trickling a head that never ends is closed within {CLOSE_WITHIN:g} s "
                         f"({'%.2f s' % trickle_closed if trickle_closed is not None else 'still open'})")

        # A request sent after 300 ms (inside the 1 s) is served.
        s = socket.socket()
        try:
            s.settimeout(5)
            s.connect(inbound)
            time.sleep(0.3)
            status, error = request_on(s, keep_alive=True)
            late_status, late_error = None, None
            if status == 200:
                # Once a request was seen, the detection timer no longer applies: 2.5 s idle is fine.
                time.sleep(2.5)
                late_status, late_error = request_on(s, keep_alive=False)
        except OSError as e:
            status, error = None, str(e)
            late_status, late_error = None, "not tried"
        finally:
            s.close()
        report.check(status == 200, f"a request sent 300 ms after connecting is served: {status or error}")
        if not baseline:
            report.check(late_status == 200,
                         f"after that response, a second request 2.5 s later on the same connection is served "
                         f"(the detect timer is gone): {late_status or late_error}")
            metrics = proxy.metrics()
            counted = metric_sum(metrics, "meshproxy_connections_timed_out_total", direction="inbound", reason="detect")
            report.check(counted >= silent,
                         f"meshproxy_connections_timed_out_total{{direction=\"inbound\",reason=\"detect\"}} "
                         f"{counted:.0f} (at least {silent})")
    finally:
        watcher.close_all()
        if partial:
            partial.close_all()
        if trickler:
            trickler.close()
        proxy.stop()


def idle_test(report, app_port, baseline):
    flags = [] if baseline else ["--idle-timeout-ms", "1000"]
    print(f"# idle: --idle-timeout-ms 1000{' [baseline: no flags]' if baseline else ''}", flush=True)
    proxy = start_proxy(report, "idle timeout", app_port, *flags)
    if not proxy:
        return
    try:
        inbound = proxy.addr("inbound")
        s = socket.socket()
        try:
            s.settimeout(5)
            s.connect(inbound)
            status, error = request_on(s, keep_alive=True)
            closed_after = wait_closed(s, CLOSE_WITHIN) if status == 200 else None
        except OSError as e:
            status, error, closed_after = None, str(e), None
        finally:
            s.close()
        print(f"# idle: first response {status or error}; the idle keep-alive connection "
              f"{'was closed after %.2f s' % closed_after if closed_after is not None else 'stayed open'}", flush=True)
        if baseline:
            report.check(status == 200 and closed_after is None,
                         f"baseline: an idle keep-alive connection stays open {CLOSE_WITHIN:g} s without the flag")
        else:
            report.check(status == 200 and closed_after is not None,
                         f"an idle keep-alive connection is closed within {CLOSE_WITHIN:g} s after its response "
                         f"({status or error}; {'%.2f s' % closed_after if closed_after is not None else 'still open'})")

        # A connection that keeps asking every 300 ms for 3 s is never idle for 1 s.
        s = socket.socket()
        served, failure = 0, None
        try:
            s.settimeout(5)
            s.connect(inbound)
            t0 = time.time()
            for _ in range(20):  # bounded: ~10 requests in 3 s
                if time.time() - t0 > 3:
                    break
                status, error = request_on(s, keep_alive=True)
                if status != 200:
                    failure = error or f"status {status}"
                    break
                served += 1
                time.sleep(0.3)
        except OSError as e:
            failure = str(e)
        finally:
            s.close()
        report.check(failure is None and served >= 5,
                     f"a keep-alive connection asking every 300 ms is kept: {served} requests served over 3 s"
                     f"{'; then ' + failure if failure else ''}")
        if not baseline:
            counted = metric_sum(proxy.metrics(), "meshproxy_connections_timed_out_total", direction="inbound",
                                 reason="idle")
            report.check(counted >= 1, f"meshproxy_connections_timed_out_total{{direction=\"inbound\",reason=\"idle\"}} "
                                       f"{counted:.0f} (at least 1)")
            # A body that stalls (10 of 100,000 bytes, then nothing): 408 and closed, not held forever.
            s = socket.socket()
            answer, closed_after = b"", None
            try:
                s.settimeout(CLOSE_WITHIN)
                s.connect(inbound)
                t0 = time.time()
                s.sendall(b"POST /upload HTTP/1.1\r\nHost: peer.test\r\nContent-Length: 100000\r\n\r\n0123456789")
                while time.time() - t0 < CLOSE_WITHIN:
                    chunk = s.recv(4096)
                    if not chunk:
                        closed_after = time.time() - t0
                        break
                    answer += chunk
            except OSError:
                closed_after = closed_after or (time.time() - t0)
            finally:
                s.close()
            status_line = answer.split(b"\r\n", 1)[0].decode(errors="replace")
            # (nginx waits for the whole body before it answers /upload: only the proxy can end this.)
            report.check(closed_after is not None and status_line.startswith("HTTP/1.1 408"),
                         f"a request body that stalls is answered 408 and closed within {CLOSE_WITHIN:g} s "
                         f"({status_line or 'no answer'}; {'closed after %.2f s' % closed_after if closed_after else 'still open'})")
            counted = metric_sum(proxy.metrics(), "meshproxy_connections_timed_out_total", direction="inbound", reason="body")
            report.check(counted >= 1, f"meshproxy_connections_timed_out_total{{reason=\"body\"}} {counted:.0f} (at least 1)")
    finally:
        proxy.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="C = 20,000, M = 10,000")
    parser.add_argument("--baseline", action="store_true", help="run the clients without the new flags")
    parser.add_argument("--only", choices=["cap", "detect", "idle"], help="one part only")
    opts = parser.parse_args()
    clients, cap = (20_000, 10_000) if opts.full else (1_000, 500)
    silent = 200 if opts.full else 20

    soft, hard = raise_nofile(clients * 2 + 1_000)
    # The client closes what the proxy closed, so it holds about the cap (all of them in the
    # baseline, where nothing is refused), and the proxy holds the cap.
    need = (clients if opts.baseline else cap) + 1_000
    if soft < need:
        # A sandbox that may not raise the hard limit keeps this process to it: open as many as fit.
        fit = soft - 1_000 if opts.baseline else clients
        cap = min(cap, soft - 1_000)
        print(f"# the open-file hard limit is {hard:,} and cannot be raised here: opening {fit:,} "
              f"connections (cap {cap:,}) instead of {clients:,}", flush=True)
        clients = fit
    print(f"# {'FULL' if opts.full else 'QUICK'}: C = {clients:,} connections, M = {cap:,}; this process's "
          f"RLIMIT_NOFILE {soft:,} / {hard:,} (meshproxy inherits it)", flush=True)
    if soft < need - 900:
        print(f"# warning: {soft:,} open files is not enough for {clients:,} client sockets held at once", flush=True)

    report = Report()
    app_port, _ = start_nginx(NGINX_CONF)
    if opts.only in (None, "cap"):
        cap_test(report, app_port, clients, cap, opts.baseline)
    if opts.only in (None, "detect"):
        detect_test(report, app_port, silent, opts.baseline)
    if opts.only in (None, "idle"):
        idle_test(report, app_port, opts.baseline)
    report.finish()


if __name__ == "__main__":
    main()
