#!/usr/bin/env python3
"""gRPC through the mesh with grpcio on both ends.

    grpcio client -> client meshproxy (outbound, h2c) -> server meshproxy (inbound) -> grpcio server

Two rounds, each with fresh proxies: plaintext, then mTLS between the proxies. Each round checks
  - every non-OK status 1..16, trailers-only (unary abort) and after two messages (server
    streaming): the client must see that code, the server's details string (one has non-ASCII and
    '%'), and the server's trailing binary metadata `x-peer-bin`;
  - an OK unary call with its response and trailing metadata;
  - server streaming of 1,000 messages, client streaming of 10 MB, bidi ping-pong of 100;
  - both proxies' response_total: grpc_status="N" with Linkerd's classification (failure for
    2, 4, 7, 13, 14, 15; success for the rest, 0 included), at least as many as calls made.

    python3 Tests/Peers/grpc_peer.py            # plaintext and mTLS through meshproxy
    python3 Tests/Peers/grpc_peer.py --direct   # the same calls client -> server, no proxies
    python3 Tests/Peers/grpc_peer.py --only mtls

Messages are raw bytes (no protobuf): generic handlers with identity (de)serializers.
"""
import argparse
import hashlib
import os
import queue
import struct
import sys
import time
from concurrent import futures

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerlib import MeshPair, Report, free_port, metric_samples  # noqa: E402

AUTHORITY = "server.peer.svc.cluster.local:8080"
SERVICE = "peer.Test"
DEADLINE = 10.0  # seconds, on every call
FAILURE_CODES = {2, 4, 7, 13, 14, 15}  # Linkerd's default gRPC failure classes
CODES = {c.value[0]: c for c in grpc.StatusCode}  # 0 OK .. 16 UNAUTHENTICATED
STREAM_COUNT = 1000
CHUNK = 64 * 1024
CHUNKS = 160  # 10 MiB client streaming
BIDI_ROUNDS = 100
MAX_MESSAGE = 16 * 1024 * 1024


def details_for(n):
    """The server's details string for status n: distinctive, some needing percent-encoding."""
    name = CODES[n].name
    if n == 3:
        return "café 100% ✓"
    if n == 13:
        return f"{name}: 50%/50% «ünïcödé» — \"quoted\" %41 not-an-escape"
    if n == 16:
        return f"{name}: token 'x' is ✗ (日本語)"
    return f"peer says {name} ({n})"


def bin_for(n):
    """The server's trailing `x-peer-bin` for status n (bytes that are not text)."""
    return bytes([0x00, 0xFF, n, 0x80, 0x0D, 0x0A]) + f"peer-{n}".encode()


OK_TRAILER_BIN = b"\x00\x01ok-trailer\xfe\xff"
OK_TRAILER_TEXT = "ok trailer text"


def stream_message(i):
    return struct.pack(">I", i) + bytes((i + k) % 251 for k in range(i % 97))


# ---------------------------------------------------------------- server

def _abort(context, n):
    context.set_trailing_metadata((("x-peer-bin", bin_for(n)), ("x-peer-code", str(n))))
    context.abort(CODES[n], details_for(n))


def unary(request, context):
    if request.startswith(b"abort "):
        _abort(context, int(request.split()[1]))
    context.set_trailing_metadata((("x-peer-bin", OK_TRAILER_BIN), ("x-peer-text", OK_TRAILER_TEXT)))
    return b"pong:" + request


def server_stream(request, context):
    if request.startswith(b"abort "):
        yield b"first"
        yield b"second"
        _abort(context, int(request.split()[1]))
    elif request.startswith(b"count "):
        for i in range(int(request.split()[1])):
            yield stream_message(i)


def client_stream(request_iterator, context):
    digest = hashlib.sha256()
    total = 0
    for chunk in request_iterator:
        digest.update(chunk)
        total += len(chunk)
    return f"{total} {digest.hexdigest()}".encode()


def bidi(request_iterator, context):
    for message in request_iterator:
        yield b"pong " + message


def start_server():
    identity = None  # bytes in, bytes out
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, request_deserializer=identity, response_serializer=identity),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, request_deserializer=identity,
                                                             response_serializer=identity),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream, request_deserializer=identity,
                                                             response_serializer=identity),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi, request_deserializer=identity, response_serializer=identity),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=48),
                         options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                  ("grpc.max_send_message_length", MAX_MESSAGE)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


# ---------------------------------------------------------------- client

def md_value(metadata, key):
    for item in metadata or ():
        if item[0] == key:
            return item[1]
    return None


def describe(code, details, trailing, messages=None):
    s = f"code={code.name if code else None} details={details!r} x-peer-bin={md_value(trailing, 'x-peer-bin')!r}"
    if messages is not None:
        s = f"messages={messages!r} " + s
    if code == grpc.StatusCode.DEADLINE_EXCEEDED and "Deadline Exceeded" in (details or ""):
        s += f" (the client's own {DEADLINE:g} s deadline: the call hung)"
    return s


def call_unary_abort(channel, n):
    stub = channel.unary_unary(f"/{SERVICE}/Unary")
    try:
        response = stub(f"abort {n}".encode(), timeout=DEADLINE)
        return (grpc.StatusCode.OK, None, None, [response])
    except grpc.RpcError as e:
        return (e.code(), e.details(), e.trailing_metadata(), [])


def call_stream_abort(channel, n):
    stub = channel.unary_stream(f"/{SERVICE}/ServerStream")
    call = stub(f"abort {n}".encode(), timeout=DEADLINE)
    got = []
    try:
        for m in call:
            got.append(m)
        return (grpc.StatusCode.OK, call.details(), call.trailing_metadata(), got)
    except grpc.RpcError as e:
        return (e.code(), e.details(), e.trailing_metadata(), got)


def run_round(report, label, mode):
    """One round: `mode` is "direct", "plain" or "mtls". Returns nothing; reports checks."""
    calls = {n: 0 for n in range(17)}  # grpc_status -> calls the server answered with it
    server, app_port = start_server()
    mesh = None
    failed_before = report.failed
    try:
        if mode == "direct":
            target = f"127.0.0.1:{app_port}"
        else:
            try:
                mesh = MeshPair(app_port, AUTHORITY, mtls=(mode == "mtls"))
            except Exception as e:
                report.check(False, f"[{label}] start the proxies: {e}")
                return
            host, port = mesh.outbound_address()
            target = f"{host}:{port}"
            if mode == "mtls":
                print(f"# [{label}] server identity {mesh.server_identity}, client identity {mesh.client_identity}")
        run_calls(report, label, target, calls)
        if mesh:
            check_metrics(report, label, mesh, calls)
            if report.failed > failed_before:
                dump_logs(label, mesh)
    finally:
        if mesh:
            mesh.stop()
        server.stop(grace=None)


def dump_logs(label, mesh):
    for name, text in mesh.logs().items():
        lines = text.strip().splitlines()
        print(f"# [{label}] {name} proxy stderr ({len(lines)} lines{', last 25' if len(lines) > 25 else ''}):")
        for line in lines[-25:]:
            print(f"#   {line}")


def open_channel(target):
    """A channel with a connection of its own (a local subchannel pool: channels share nothing), so
    one check's broken connection cannot fail the next."""
    return grpc.insecure_channel(target, options=[
        ("grpc.default_authority", AUTHORITY),
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.enable_http_proxy", 0),
        ("grpc.enable_retries", 0),
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
    ])


def with_channel(target, check):
    channel = open_channel(target)
    try:
        return check(channel)
    finally:
        channel.close()


def run_calls(report, label, target, calls):
    # Status codes 1..16, both variants, all at once on one connection (32 concurrent streams;
    # a hang costs one deadline, not 32).
    channel = open_channel(target)
    with futures.ThreadPoolExecutor(max_workers=32) as pool:
        jobs = {}
        for n in range(1, 17):
            jobs[("trailers-only", n)] = pool.submit(call_unary_abort, channel, n)
            jobs[("after 2 messages", n)] = pool.submit(call_stream_abort, channel, n)
            calls[n] += 2
        for n in range(1, 17):
            for variant in ("trailers-only", "after 2 messages"):
                code, details, trailing, messages = jobs[(variant, n)].result()
                want_messages = [] if variant == "trailers-only" else [b"first", b"second"]
                ok = (code == CODES[n] and details == details_for(n)
                      and md_value(trailing, "x-peer-bin") == bin_for(n) and messages == want_messages)
                what = f"[{label}] status {n} {CODES[n].name} {variant}"
                if not ok:
                    what += (f": got {describe(code, details, trailing, messages if variant != 'trailers-only' else None)}"
                             f"; want {describe(CODES[n], details_for(n), (('x-peer-bin', bin_for(n)),), want_messages if variant != 'trailers-only' else None)}")
                report.check(ok, what)
    channel.close()

    # The data-path calls, also at once, each on a connection of its own; reported in this order.
    calls[0] += 4
    checks = [ok_unary, server_streaming, client_streaming, bidi_ping_pong]
    with futures.ThreadPoolExecutor(max_workers=len(checks)) as pool:
        results = [pool.submit(with_channel, target, check) for check in checks]
        for result in results:
            ok, what = result.result()
            report.check(ok, f"[{label}] {what}")


def ok_unary(channel):
    """An OK unary call: its response and trailing metadata intact."""
    what = "OK unary: response and trailing metadata"
    stub = channel.unary_unary(f"/{SERVICE}/Unary")
    try:
        response, call = stub.with_call(b"hello \xff", timeout=DEADLINE)
    except grpc.RpcError as e:
        return False, f"{what}: got {describe(e.code(), e.details(), e.trailing_metadata())}"
    trailing = call.trailing_metadata()
    ok = (response == b"pong:hello \xff" and call.code() == grpc.StatusCode.OK
          and md_value(trailing, "x-peer-bin") == OK_TRAILER_BIN and md_value(trailing, "x-peer-text") == OK_TRAILER_TEXT)
    return ok, what + ("" if ok else f": got response={response!r} trailing={trailing!r}")


def server_streaming(channel):
    """1,000 messages from the server, all of them, in order."""
    what = f"server streaming {STREAM_COUNT} messages in order"
    stub = channel.unary_stream(f"/{SERVICE}/ServerStream")
    got = []
    try:
        for m in stub(f"count {STREAM_COUNT}".encode(), timeout=DEADLINE):
            got.append(m)
    except grpc.RpcError as e:
        return False, f"{what}: after {len(got)} got " + describe(e.code(), e.details(), e.trailing_metadata())
    bad = next((i for i, m in enumerate(got) if m != stream_message(i)), None)
    ok = len(got) == STREAM_COUNT and bad is None
    return ok, what + ("" if ok else f": got {len(got)}, first wrong at {bad}")


def client_streaming(channel):
    """10 MiB from the client in 64 KiB messages; the server answers with their count and sha256."""
    what = f"client streaming {CHUNKS} x {CHUNK // 1024} KiB: byte count and sha256"
    payload = os.urandom(CHUNK * CHUNKS)
    want = f"{len(payload)} {hashlib.sha256(payload).hexdigest()}".encode()
    stub = channel.stream_unary(f"/{SERVICE}/ClientStream")
    started = time.time()
    try:
        response = stub((payload[i:i + CHUNK] for i in range(0, len(payload), CHUNK)), timeout=DEADLINE)
    except grpc.RpcError as e:
        return False, f"{what}: got " + describe(e.code(), e.details(), e.trailing_metadata())
    ok = response == want
    return ok, f"{what} ({time.time() - started:.1f} s)" + ("" if ok else f": got {response!r}, want {want!r}")


def bidi_ping_pong(channel):
    """100 pings, each sent only after the previous pong arrived."""
    what = f"bidi ping-pong {BIDI_ROUNDS} messages"
    stub = channel.stream_stream(f"/{SERVICE}/Bidi")
    pings = queue.Queue()

    def requests():
        while True:
            item = pings.get()
            if item is None:
                return
            yield item

    call = stub(requests(), timeout=DEADLINE)
    done = 0
    problem = None
    try:
        pings.put(b"ping 0")
        for i in range(BIDI_ROUNDS):
            pong = next(call)
            if pong != b"pong ping %d" % i:
                problem = f"round {i}: got {pong!r}"
                break
            done += 1
            pings.put(b"ping %d" % (i + 1) if i + 1 < BIDI_ROUNDS else None)
        if problem is None:
            rest = list(call)
            if rest or call.code() != grpc.StatusCode.OK:
                problem = f"after {done} pongs: extra {rest!r}, code {call.code()}"
    except StopIteration:
        problem = f"stream ended after {done} pongs"
    except grpc.RpcError as e:
        problem = f"after {done} pongs: " + describe(e.code(), e.details(), e.trailing_metadata())
    finally:
        pings.put(None)
    if problem:
        call.cancel()
    return problem is None, what + (f": {problem}" if problem else "")


def check_metrics(report, label, mesh, calls):
    """response_total per grpc_status on both proxies, with Linkerd's classification."""
    sides = [("server proxy inbound", mesh.server, {"direction": "inbound"}),
             ("client proxy outbound", mesh.client, {"direction": "outbound", "authority": AUTHORITY})]
    if mesh.mtls:
        sides[0][2].update(tls="true", client_id=mesh.client_identity)
        sides[1][2].update(tls="true", server_id=mesh.server_identity)
    for side, proxy, labels in sides:
        # A stream is counted when it ends; give the proxy a moment after the last call.
        deadline = time.time() + 3
        while True:
            try:
                samples = metric_samples(proxy.metrics(), "response_total", **labels)
                error = None
            except Exception as e:
                samples, error = [], f"{type(e).__name__}: {e}"
            seen = {}
            for found, value in samples:
                key = (found.get("grpc_status", ""), found.get("classification", ""))
                seen[key] = seen.get(key, 0) + value
            if all(seen.get((str(n), "failure" if n in FAILURE_CODES else "success"), 0) >= calls[n]
                   for n in calls if calls[n]) or time.time() > deadline:
                break
            time.sleep(0.2)
        if error:
            report.check(False, f"[{label}] {side}: /metrics: {error}")
            continue
        selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
        any_bad = False
        for n in sorted(calls):
            if not calls[n]:
                continue
            want_class = "failure" if n in FAILURE_CODES else "success"
            other = "success" if want_class == "failure" else "failure"
            right, wrong = seen.get((str(n), want_class), 0), seen.get((str(n), other), 0)
            ok = right >= calls[n] and wrong == 0
            any_bad |= not ok
            what = (f'[{label}] {side} response_total{{grpc_status="{n}",classification="{want_class}"}} '
                    f'>= {calls[n]} ({CODES[n].name})')
            if not ok:
                what += f": got {right:g}" + (f", and {wrong:g} classified {other}" if wrong else "")
            report.check(ok, what)
        if any_bad:
            summary = ", ".join(f'grpc_status="{g}" {c}: {v:g}' for (g, c), v in sorted(seen.items())) or "none"
            print(f"# [{label}] {side} response_total{{{selector}}} by grpc_status/classification: {summary}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--direct", action="store_true", help="client -> server with no proxies (the test's own baseline)")
    ap.add_argument("--only", choices=["plain", "mtls"], help="one round through the proxies")
    args = ap.parse_args()
    report = Report()
    started = time.time()
    if args.direct:
        run_round(report, "direct", "direct")
    else:
        for mode in ([args.only] if args.only else ["plain", "mtls"]):
            run_round(report, mode, mode)
    print(f"# {time.time() - started:.1f} s")
    report.finish()


if __name__ == "__main__":
    main()
