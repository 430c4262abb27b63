#!/usr/bin/env python3
"""WebSocket through the mesh with the `websockets` library on both ends.

    websockets client -> client meshproxy (outbound) -> server meshproxy (inbound) -> websockets echo server

Two rounds, each with fresh proxies: plaintext, then mTLS between the proxies. Each round checks
  - a plain HTTP GET through the proxies before anything else (the path works at all);
  - the WebSocket handshake (Host: the destination's authority, path /echo);
  - 100 text messages (non-ASCII, sizes across the 125/126 and 65535/65536 length encodings)
    and 100 binary messages (one of 1 MiB) echoed back exactly, each awaited before the next;
  - a clean close the server starts with code 4001 "bye": the client sees the code and reason,
    and the server sees the client's closing reply;
  - plain HTTP GETs through the same proxies afterwards (nothing wedged).

    python3 Tests/Peers/websocket_peer.py            # plaintext and mTLS through meshproxy
    python3 Tests/Peers/websocket_peer.py --direct   # the same, client -> server with no proxies
    python3 Tests/Peers/websocket_peer.py --only mtls
"""
import argparse
import asyncio
import http.client
import os
import socket
import sys
import time
from http import HTTPStatus

import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerlib import MeshPair, Report  # noqa: E402

AUTHORITY = "server.peer.svc.cluster.local:8080"
STEP = 5.0  # seconds for each send/receive/handshake/close
BIG_STEP = 15.0  # for the 1 MiB message
MAX_SIZE = 8 * 1024 * 1024
HEALTH_BODY = b"healthy\n"
CLOSE_CODE, CLOSE_REASON = 4001, "bye"


def text_messages():
    sizes = [0, 1, 2, 125, 126, 127, 1000, 65535, 65536, 70000]
    out = []
    for i in range(100):
        base = f"text {i} café ✓ 日本 \U0001F600 % \\ \" "
        n = sizes[i] if i < len(sizes) else (i * 37) % 500
        out.append((base * (n // len(base) + 1))[:n] if i < len(sizes) else base + "x" * n)
    return out


def binary_messages():
    sizes = [0, 1, 125, 126, 127, 65535, 65536, 1024 * 1024]
    out = []
    for i in range(100):
        n = sizes[i] if i < len(sizes) else (i * 53) % 3000
        out.append(bytes((i * 7 + k) % 256 for k in range(n)) if n < 100000 else os.urandom(n))
    return out


# ---------------------------------------------------------------- the app

class App:
    def __init__(self):
        self.closes_completed = []  # the close frames servers received back after closing
        self.echo_requests = []  # the headers of each request for /echo the app received
        self.server = None
        self.port = None

    async def start(self):
        self.server = await serve(self.handler, "127.0.0.1", 0, process_request=self.process_request,
                                  max_size=MAX_SIZE, compression=None, ping_interval=None)
        self.port = self.server.sockets[0].getsockname()[1]

    def process_request(self, connection, request):
        # Plain HTTP for /health; everything else goes on to the WebSocket handshake (426 without Upgrade).
        if request.path == "/echo":
            self.echo_requests.append(request.headers)
        if request.path == "/health":
            return connection.respond(HTTPStatus.OK, HEALTH_BODY.decode())
        return None

    async def handler(self, ws):
        if ws.request.path != "/echo":
            await ws.close(1008, "unknown path")
            return
        async for message in ws:
            if message == "close please":
                await ws.close(CLOSE_CODE, CLOSE_REASON)
                self.closes_completed.append(ws.protocol.close_rcvd)
                return
            await ws.send(message)

    async def stop(self):
        self.server.close()
        try:
            await asyncio.wait_for(self.server.wait_closed(), 5)
        except asyncio.TimeoutError:
            pass


# ---------------------------------------------------------------- client side

def http_get(address, path="/health"):
    """(status, body) of GET path with Host: AUTHORITY, or raises."""
    conn = http.client.HTTPConnection(*address, timeout=STEP)
    try:
        conn.request("GET", path, headers={"Host": AUTHORITY})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


async def check_get(report, label, address, what):
    try:
        status, body = await asyncio.to_thread(http_get, address)
        ok = status == 200 and body == HEALTH_BODY
        report.check(ok, f"[{label}] plain HTTP GET {what}" + ("" if ok else f": got {status} {body[:200]!r}"))
    except Exception as e:
        report.check(False, f"[{label}] plain HTTP GET {what}: {type(e).__name__}: {e}")


def short(v):
    r = repr(v)
    return r if len(r) < 80 else r[:60] + f"... ({len(v)} long)"


async def exchange(ws, messages):
    """Send each message and await its echo; None if all came back exactly, else what went wrong."""
    for i, m in enumerate(messages):
        step = BIG_STEP if len(m) > 100000 else STEP
        try:
            await asyncio.wait_for(ws.send(m), step)
            back = await asyncio.wait_for(ws.recv(), step)
        except asyncio.TimeoutError:
            return f"message {i} ({len(m)} long): no echo within {step:g} s (hung)"
        except websockets.ConnectionClosed as e:
            return f"message {i} ({len(m)} long): connection closed: {e}"
        if type(back) is not type(m) or back != m:
            return f"message {i}: sent {type(m).__name__} {short(m)}, got {type(back).__name__} {short(back)}"
    return None


async def websocket_checks(report, label, address, app):
    checks = ["WebSocket handshake", "100 text messages echoed exactly", "100 binary messages (one 1 MiB) echoed exactly",
              f"server closes with {CLOSE_CODE} {CLOSE_REASON!r}: the client sees code and reason",
              "close handshake completed both ways"]
    uri = f"ws://{AUTHORITY}/echo"
    try:
        sock = socket.create_connection(address, timeout=STEP)
    except OSError as e:
        for c in checks:
            report.check(False, f"[{label}] {c}: cannot connect to {address}: {e}")
        return
    try:
        ws = await connect(uri, sock=sock, proxy=None, compression=None, max_size=MAX_SIZE,
                           open_timeout=STEP, ping_interval=None, close_timeout=STEP)
    except Exception as e:
        sock.close()
        why = f"{type(e).__name__}: {e}"
        if e.__cause__ is not None:
            why += f" (cause: {type(e.__cause__).__name__}: {e.__cause__})"
        response = getattr(e, "response", None)
        if response is not None:
            why += f" (status {response.status_code}, headers {dict(response.headers)!r}, body {bytes(response.body[:200])!r})"
        if isinstance(e, (asyncio.TimeoutError, TimeoutError)):
            why += f" (no handshake response within {STEP:g} s)"
        if app.echo_requests:
            h = app.echo_requests[-1]
            why += (f"; the app got GET /echo with Host={h.get('Host')!r} Connection={h.get('Connection')!r}"
                    f" Upgrade={h.get('Upgrade')!r} Sec-WebSocket-Key={'present' if h.get('Sec-WebSocket-Key') else None}")
        else:
            why += "; the app never got the GET /echo"
        report.check(False, f"[{label}] {checks[0]}: {why}")
        for c in checks[1:]:
            report.check(False, f"[{label}] {c}: skipped, no WebSocket connection")
        return
    report.check(True, f"[{label}] {checks[0]} (101 Switching Protocols)")
    try:
        problem = await exchange(ws, text_messages())
        report.check(problem is None, f"[{label}] {checks[1]}" + (f": {problem}" if problem else ""))
        problem = await exchange(ws, binary_messages()) if problem is None else "skipped after the text failure"
        report.check(problem is None, f"[{label}] {checks[2]}" + (f": {problem}" if problem else ""))

        before = len(app.closes_completed)
        got = None
        try:
            await asyncio.wait_for(ws.send("close please"), STEP)
            extra = await asyncio.wait_for(ws.recv(), STEP)
            got = f"a message instead of a close: {short(extra)}"
        except websockets.ConnectionClosed as e:
            rcvd = e.rcvd
            if rcvd is None:
                got = f"closed without a close frame from the server ({e})"
            elif rcvd.code != CLOSE_CODE or rcvd.reason != CLOSE_REASON:
                got = f"close code {rcvd.code} reason {rcvd.reason!r}"
        except asyncio.TimeoutError:
            got = f"no close within {STEP:g} s (hung)"
        report.check(got is None, f"[{label}] {checks[3]}" + (f": got {got}" if got else ""))
        # The server's close() returns once the client's reply arrived (or timed out).
        deadline = time.time() + STEP
        while len(app.closes_completed) == before and time.time() < deadline:
            await asyncio.sleep(0.05)
        server_rcvd = app.closes_completed[-1] if len(app.closes_completed) > before else None
        ok = server_rcvd is not None and ws.protocol.close_sent is not None
        report.check(ok, f"[{label}] {checks[4]}" + ("" if ok else
                     f": server received {server_rcvd}, client sent {ws.protocol.close_sent}"))
    finally:
        try:
            await asyncio.wait_for(ws.close(), STEP)
        except Exception:
            pass


async def run_round(report, label, mode):
    app = App()
    await app.start()
    mesh = None
    failed_before = report.failed
    try:
        if mode == "direct":
            address = ("127.0.0.1", app.port)
        else:
            try:
                mesh = await asyncio.to_thread(MeshPair, app.port, AUTHORITY, mode == "mtls")
            except Exception as e:
                report.check(False, f"[{label}] start the proxies: {e}")
                return
            address = mesh.outbound_address()
            if mode == "mtls":
                print(f"# [{label}] server identity {mesh.server_identity}, client identity {mesh.client_identity}")
        await check_get(report, label, address, "before the WebSocket")
        await websocket_checks(report, label, address, app)
        await check_get(report, label, address, "after the WebSocket")
        await check_get(report, label, address, "after the WebSocket, again")
        if mesh and report.failed > failed_before:
            for name, text in mesh.logs().items():
                lines = text.strip().splitlines()
                print(f"# [{label}] {name} proxy stderr ({len(lines)} lines{', last 25' if len(lines) > 25 else ''}):")
                for line in lines[-25:]:
                    print(f"#   {line}")
    finally:
        if mesh:
            mesh.stop()
        await app.stop()


async def main_async(args):
    report = Report()
    started = time.time()
    if args.direct:
        await run_round(report, "direct", "direct")
    else:
        for mode in ([args.only] if args.only else ["plain", "mtls"]):
            await run_round(report, mode, mode)
    print(f"# {time.time() - started:.1f} s")
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--direct", action="store_true", help="client -> server with no proxies (the test's own baseline)")
    ap.add_argument("--only", choices=["plain", "mtls"], help="one round through the proxies")
    report = asyncio.run(main_async(ap.parse_args()))
    report.finish()


if __name__ == "__main__":
    main()
