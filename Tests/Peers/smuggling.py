#!/usr/bin/env python3
"""Hostile HTTP/1 framing through meshproxy's inbound listener to a real nginx upstream.

Every case sends raw bytes (a request whose framing is odd, ambiguous or invalid) to the proxy.
nginx, the upstream, logs each request it receives (method, target, Content-Length,
Transfer-Encoding, status, the body it read). A case passes when

  * no request for a `/smuggled-NN` target ever reaches nginx, and
  * either the proxy refused the request (first response 4xx or 501) and nginx saw nothing at
    all during the case, or nginx saw exactly the requests the client legitimately sent (same
    methods and targets; the same bodies where the case says which), and nothing else, and
  * afterwards the proxy still answers a plain GET on a new connection (and nginx logs it, which
    also proves the log works: a case cannot pass because nginx logged nothing).

Each case runs on a fresh proxy, so an upstream connection left in a bad state by one case cannot
be blamed on the next. The same bytes are also sent straight to a second nginx, printed as an
informational baseline ("# direct ...") for comparison; it never fails the run.

A separate check, "early answer + abandoned body": the upstream answers `POST /early` (404)
before reading its body, the client gives up on the body and closes; new clients must still be
served (the upstream connection that still expects the body must not be reused).

    python3 Tests/Peers/smuggling.py               # everything
    python3 Tests/Peers/smuggling.py --case CL.TE  # cases whose name contains CL.TE (any case)
    python3 Tests/Peers/smuggling.py --direct      # only the nginx baseline
    python3 Tests/Peers/smuggling.py --list        # the cases
    python3 Tests/Peers/smuggling.py -v            # also print the bytes and what came back
"""
import argparse
import json
import os
import re
import select
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerlib import Proxy, Report, binary, start_nginx  # noqa: E402

HOST = "mesh.test"
QUIET = 1.2          # a conversation ends after this long without bytes from the server
AFTER_LAST = 0.25    # ... or this long after every expected response arrived
LONGEST = 5.0        # ... and never lasts longer than this
WAIT_100 = object()  # in a case's parts: wait (up to 0.5 s) for an interim 100 before going on

NGINX_CONF = r"""
    log_format peer escape=json '{"request":"$request","method":"$request_method","uri":"$request_uri",'
                                '"proto":"$server_protocol","cl":"$content_length","te":"$http_transfer_encoding",'
                                '"len":"$request_length","status":"$status","body":"$request_body",'
                                '"conn":"$connection","n":"$connection_requests"}';
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:{port};
        access_log {dir}/requests.log peer;
        client_body_buffer_size 256k;
        client_body_in_single_buffer on;
        client_max_body_size 10m;
        # Everything is proxied to the sink below, so nginx reads each body in full (and logs it).
        location / {
            proxy_pass http://unix:{dir}/sink.sock:;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        # Answers before reading the body.
        location = /early { return 404; }
    }
    server {
        listen unix:{dir}/sink.sock;
        access_log off;
        location / { return 200 "ok\n"; }
    }
"""


# ---------------------------------------------------------------------------------------------
# The cases

class Case:
    def __init__(self, n, name, parts, expect, bodies=None, note="", alts=()):
        self.n = n
        self.alts = [list(a) for a in alts]  # other request lists that are just as legitimate
        self.name = name
        self.parts = parts            # bytes, or WAIT_100, sent in order
        self.expect = expect          # [(method, target)] the client legitimately sent, in order
        self.bodies = bodies          # None, or per expected request: the body nginx must read (None: any)
        self.note = note              # what RFC 9112 / 9110 say

    @property
    def methods(self):
        return [m for m, _ in self.expect]


def target(n, suffix=""):
    return f"/case-{n:02d}{suffix}"


def smuggled(n):
    """A complete request: it must never reach the upstream."""
    return f"GET /smuggled-{n:02d} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()


def fake_end(n):
    """Text that would end a chunked body and then start a request (if taken for framing)."""
    return b"0\r\n\r\n" + smuggled(n)


def chunk(data):
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def chunked(data):
    return chunk(data) + b"0\r\n\r\n"


def head(method, path, headers=(), version="HTTP/1.1", host=True):
    lines = [f"{method} {path} {version}".encode()]
    if host:
        lines.append(f"Host: {HOST}".encode())
    lines += [h if isinstance(h, bytes) else h.encode("latin-1") for h in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def build_cases():
    cases = []

    def add(name, parts, expect, bodies=None, note="", alts=()):
        cases.append(Case(len(cases) + 1, name, parts if isinstance(parts, list) else [parts], expect, bodies, note, alts))

    def n():
        return len(cases) + 1

    # --- legitimate requests: they must arrive exactly as sent -------------------------------
    k = n(); add("legit GET", head("GET", target(k)), [("GET", target(k))])
    k = n(); add("legit POST with Content-Length", head("POST", target(k), ["Content-Length: 5"]) + b"hello",
                 [("POST", target(k))], [b"hello"])
    k = n(); add("legit POST chunked", head("POST", target(k), ["Transfer-Encoding: chunked"]) + chunked(b"hello"),
                 [("POST", target(k))], [b"hello"])
    k = n(); add("pipelined: two GETs in one write", head("GET", target(k, "/1")) + head("GET", target(k, "/2")),
                 [("GET", target(k, "/1")), ("GET", target(k, "/2"))])
    k = n(); add("pipelined: POST (Content-Length) then GET in one write",
                 head("POST", target(k, "/1"), ["Content-Length: 5"]) + b"hello" + head("GET", target(k, "/2")),
                 [("POST", target(k, "/1")), ("GET", target(k, "/2"))], [b"hello", b""])
    k = n(); add("pipelined: POST (chunked) then GET in one write",
                 head("POST", target(k, "/1"), ["Transfer-Encoding: chunked"]) + chunked(b"hello") + head("GET", target(k, "/2")),
                 [("POST", target(k, "/1")), ("GET", target(k, "/2"))], [b"hello", b""])
    k = n(); add("body that looks like a chunked end + request (Content-Length)",
                 head("POST", target(k), [f"Content-Length: {len(fake_end(k))}"]) + fake_end(k),
                 [("POST", target(k))], [fake_end(k)], "the bytes are body: one request")
    k = n(); add("body that looks like a chunked end + request (chunked)",
                 head("POST", target(k), ["Transfer-Encoding: chunked"]) + chunked(fake_end(k)),
                 [("POST", target(k))], [fake_end(k)], "the bytes are chunk data: one request")
    k = n(); add("chunk extension '5;name=value'",
                 head("POST", target(k), ["Transfer-Encoding: chunked"]) + b"5;name=value\r\nhello\r\n0\r\n\r\n",
                 [("POST", target(k))], [b"hello"])
    k = n(); add("chunk extension after whitespace '5 ;a=b'",
                 head("POST", target(k), ["Transfer-Encoding: chunked"]) + b"5 ;a=b\r\nhello\r\n0\r\n\r\n",
                 [("POST", target(k))], [b"hello"], "RFC 9112 7.1.1 allows BWS before ';'")
    k = n(); add("legit trailer field",
                 head("POST", target(k), ["Transfer-Encoding: chunked"]) + b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n",
                 [("POST", target(k))], [b"hello"])

    # --- Content-Length and Transfer-Encoding together -------------------------------------------
    note_clte = "RFC 9112 6.3: TE overrides CL, and the connection MUST close after the response (or 400)"
    k = n(); add("CL.TE: Content-Length spans the chunked end and a request",
                 head("POST", target(k), [f"Content-Length: {len(fake_end(k))}", "Transfer-Encoding: chunked"]) + fake_end(k),
                 [("POST", target(k))], note=note_clte)
    k = n(); add("CL.TE: Transfer-Encoding first, then Content-Length",
                 head("POST", target(k), ["Transfer-Encoding: chunked", f"Content-Length: {len(fake_end(k))}"]) + fake_end(k),
                 [("POST", target(k))], note=note_clte)
    k = n()
    inner = smuggled(k)
    add("TE.CL: short Content-Length, the chunk holds a request",
        head("POST", target(k), [f"Content-Length: {len(f'{len(inner):x}') + 2}", "Transfer-Encoding: chunked"]) + chunked(inner),
        [("POST", target(k))], note=note_clte)

    # --- Transfer-Encoding spelled oddly, alone: the chunk data is a fake end + request -----------
    te_variants = [
        ("'Chunked'", [b"Transfer-Encoding: Chunked"], "coding names are case-insensitive: chunked"),
        ("'chunked ' (trailing space)", [b"Transfer-Encoding: chunked "], "OWS is trimmed: chunked"),
        ("'  chunked' (leading spaces)", [b"Transfer-Encoding:   chunked"], "OWS is trimmed: chunked"),
        ("'\\tchunked' (tab)", [b"Transfer-Encoding:\tchunked"], "HTAB is OWS: chunked"),
        ("'chunked, identity'", [b"Transfer-Encoding: chunked, identity"], "chunked not final: MUST 400"),
        ("'identity, chunked'", [b"Transfer-Encoding: identity, chunked"], "unknown coding: 501/400, or chunked framing"),
        ("'x-chunked'", [b"Transfer-Encoding: x-chunked"], "not chunked: 400/501"),
        ("two fields 'chunked' + 'identity'", [b"Transfer-Encoding: chunked", b"Transfer-Encoding: identity"], "chunked not final: MUST 400"),
        ("two fields 'identity' + 'chunked'", [b"Transfer-Encoding: identity", b"Transfer-Encoding: chunked"], "unknown coding: 501/400, or chunked"),
        ("'Transfer-Encoding : chunked' (space before colon)", [b"Transfer-Encoding : chunked"], "RFC 9112 5.1: MUST 400"),
        ("obs-fold 'Transfer-Encoding:\\r\\n chunked'", [b"Transfer-Encoding:\r\n chunked"], "RFC 9112 5.2: 400, or unfold to chunked"),
        ("'\\x0bchunked' (vertical tab)", [b"Transfer-Encoding: \x0bchunked"], "VT is not whitespace: 400/501"),
        ("'\"chunked\"' (quoted)", [b'Transfer-Encoding: "chunked"'], "not a coding name: 400/501"),
        ("'chunked\\x00' (NUL)", [b"Transfer-Encoding: chunked\x00"], "NUL in a field value: 400"),
    ]
    for label, lines, note in te_variants:
        k = n()
        add(f"TE obfuscated {label}, chunk data is a fake end + request",
            head("POST", target(k), lines) + chunked(fake_end(k)), [("POST", target(k))], note=note)

    # --- ... and with a Content-Length spanning a chunked end and a request (CL.TE) --------------
    clte_variants = [
        ("'Chunked'", [b"Transfer-Encoding: Chunked"]),
        ("'x-chunked'", [b"Transfer-Encoding: x-chunked"]),
        ("'chunked, identity'", [b"Transfer-Encoding: chunked, identity"]),
        ("'Transfer-Encoding : chunked'", [b"Transfer-Encoding : chunked"]),
        ("'\\x0bchunked'", [b"Transfer-Encoding: \x0bchunked"]),
        ("obs-fold of the TE value", [b"Transfer-Encoding:\r\n chunked"]),
        ("'Transfer_Encoding: chunked'", [b"Transfer_Encoding: chunked"]),
    ]
    for label, lines in clte_variants:
        k = n()
        add(f"CL.TE obfuscated {label}",
            head("POST", target(k), [f"Content-Length: {len(fake_end(k))}".encode()] + lines) + fake_end(k),
            [("POST", target(k))], note=note_clte)
    k = n()
    body = chunked(fake_end(k))
    add("TE hidden in an obs-folded header 'X-Folded: a\\r\\n Transfer-Encoding: chunked', with Content-Length",
        head("POST", target(k), [f"Content-Length: {len(body)}", b"X-Folded: a\r\n Transfer-Encoding: chunked"]) + body,
        [("POST", target(k))], [body], "folded: part of X-Folded, so Content-Length frames it (or 400)")

    # --- Content-Length spelled oddly: the body is a request --------------------------------------
    k = n(); add("duplicate Content-Length, same value",
                 head("POST", target(k), ["Content-Length: 5", "Content-Length: 5"]) + b"hello",
                 [("POST", target(k))], [b"hello"], "RFC 9112 6.3: 400, or one value")
    for order in ("small first", "large first"):
        k = n()
        body = b"hello" + smuggled(k)
        values = [5, len(body)] if order == "small first" else [len(body), 5]
        add(f"conflicting Content-Length ({order})",
            head("POST", target(k), [f"Content-Length: {v}" for v in values]) + body,
            [("POST", target(k))], note="RFC 9112 6.3: MUST 400")
    k = n(); add("Content-Length: 5, 5", head("POST", target(k), ["Content-Length: 5, 5"]) + b"hello",
                 [("POST", target(k))], [b"hello"], "identical list members: 400, or 5")
    k = n()
    body = b"hello" + smuggled(k)
    add("Content-Length: 5, N (differing list)", head("POST", target(k), [f"Content-Length: 5, {len(body)}"]) + body,
        [("POST", target(k))], note="MUST 400")
    cl_values = [
        ("'+N'", lambda L: f"+{L}", "not 1*DIGIT: 400"),
        ("'-1' (negative)", lambda L: "-1", "400"),
        ("'0xNN' (hex)", lambda L: f"0x{L:x}", "400"),
        ("99999999999999999999999 (huge)", lambda L: "99999999999999999999999", "400 (or wait for the body)"),
        ("2^64+N (wraps to N in 64 bits)", lambda L: str(2 ** 64 + L), "400"),
        ("'' (empty)", lambda L: "", "400"),
        ("'N abc' (trailing junk)", lambda L: f"{L} abc", "400"),
    ]
    for label, value, note in cl_values:
        k = n()
        add(f"Content-Length {label}, body is a request",
            head("POST", target(k), [f"Content-Length: {value(len(smuggled(k)))}"]) + smuggled(k),
            [("POST", target(k))], note=note)
    k = n(); add("Content-Length '000N' (leading zeros), body is a request",
                 head("POST", target(k), [f"Content-Length: 000{len(smuggled(k))}"]) + smuggled(k),
                 [("POST", target(k))], [smuggled(k)], "valid: N")
    k = n(); add("'Content-Length : N' (space before colon), body is a request",
                 head("POST", target(k), [f"Content-Length : {len(smuggled(k))}"]) + smuggled(k),
                 [("POST", target(k))], note="RFC 9112 5.1: MUST 400")

    # --- Connection naming framing headers (RFC 9110 7.6.1) ---------------------------------------
    k = n(); add("'Connection: content-length', body is a request",
                 head("POST", target(k), [f"Content-Length: {len(smuggled(k))}", "Connection: content-length"]) + smuggled(k),
                 [("POST", target(k))], [smuggled(k)], "the proxy must keep the message framed")
    k = n(); add("'Connection: close, Content-Length', body is a request",
                 head("POST", target(k), [f"Content-Length: {len(smuggled(k))}", "Connection: close, Content-Length"]) + smuggled(k),
                 [("POST", target(k))], [smuggled(k)], "the proxy must keep the message framed")
    k = n(); add("'Connection: transfer-encoding', chunk data is a fake end + request",
                 head("POST", target(k), ["Transfer-Encoding: chunked", "Connection: transfer-encoding"]) + chunked(fake_end(k)),
                 [("POST", target(k))], [fake_end(k)], "the proxy must keep the message framed")
    k = n(); add("'Connection: host'", head("GET", target(k), ["Connection: host"]), [("GET", target(k))])
    k = n(); add("duplicate Host", head("GET", target(k), ["Host: other.test"]), [("GET", target(k))],
                 note="RFC 9112 3.2: MUST 400")

    # --- bodies on methods that usually have none ------------------------------------------------
    for method in ("GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "PURGE"):
        k = n()
        add(f"{method} with Content-Length, body is a request",
            head(method, target(k), [f"Content-Length: {len(smuggled(k))}"]) + smuggled(k),
            [(method, target(k))], [smuggled(k)] if method not in ("TRACE",) else None,
            "the body is framed by Content-Length whatever the method")
    for method in ("GET", "HEAD", "DELETE", "PURGE"):
        k = n()
        add(f"{method} chunked, chunk data is a fake end + request",
            head(method, target(k), ["Transfer-Encoding: chunked"]) + chunked(fake_end(k)),
            [(method, target(k))], [fake_end(k)])

    # --- bare LF line endings ---------------------------------------------------------------------
    k = n(); add("bare LF after the request line",
                 f"GET {target(k)} HTTP/1.1\nHost: {HOST}\r\n\r\n".encode(), [("GET", target(k))],
                 note="RFC 9112 2.2: a recipient MAY take LF as a line end")
    k = n(); add("bare LF everywhere in the head, body is a request",
                 f"POST {target(k)} HTTP/1.1\nHost: {HOST}\nContent-Length: {len(smuggled(k))}\n\n".encode() + smuggled(k),
                 [("POST", target(k))], [smuggled(k)])
    k = n(); add("bare LF inside a field line 'X-A: a\\nTransfer-Encoding: chunked', with Content-Length",
                 head("POST", target(k), [f"Content-Length: {len(fake_end(k))}", b"X-A: a\nTransfer-Encoding: chunked"]) + fake_end(k),
                 [("POST", target(k))])
    k = n(); add("bare LF after a chunk size",
                 head("POST", target(k), ["Transfer-Encoding: chunked"]) + b"5\nhello\r\n0\r\n\r\n",
                 [("POST", target(k))], [b"hello"])
    # A parser that takes LF for CRLF here (nginx does) sees a second, pipelined request: as
    # legitimate as a 400 (the proxy must then forward both, framed).
    note_lf = "400, or LF taken as a line end: then a second, pipelined GET"
    k = n(); add("bare LF after chunk data, then a GET",
                 head("POST", target(k), ["Transfer-Encoding: chunked"]) + b"5\r\nhello\n0\r\n\r\n" + head("GET", target(k, "/next")),
                 [("POST", target(k))], [b"hello"], note_lf, alts=[[("POST", target(k)), ("GET", target(k, "/next"))]])
    k = n(); add("bare LF ending the last chunk and the trailers, then a GET",
                 head("POST", target(k), ["Transfer-Encoding: chunked"]) + b"5\r\nhello\r\n0\n\n" + head("GET", target(k, "/next")),
                 [("POST", target(k))], [b"hello"], note_lf, alts=[[("POST", target(k)), ("GET", target(k, "/next"))]])

    # --- invalid chunk sizes ----------------------------------------------------------------------
    k = n(); add("chunk size '0x..' (hex prefix), chunk holds a request",
                 head("POST", target(k), ["Transfer-Encoding: chunked"]) + f"0x{len(smuggled(k)):x}\r\n".encode() + smuggled(k) + b"\r\n0\r\n\r\n",
                 [("POST", target(k))], note="400")
    k = n(); add("chunk size '5\\x00' (NUL)",
                 head("POST", target(k), ["Transfer-Encoding: chunked"]) + b"5\x00\r\nhello\r\n0\r\n\r\n" + smuggled(k),
                 [("POST", target(k))], note="400")
    k = n(); add("chunk size 'ffffffffffffffff1' (overflow)",
                 head("POST", target(k), ["Transfer-Encoding: chunked"]) + b"ffffffffffffffff1\r\nhello\r\n0\r\n\r\n" + smuggled(k),
                 [("POST", target(k))], note="400")
    k = n(); add("chunk size '10000000000000005' (wraps to 5 in 64 bits)",
                 head("POST", target(k), ["Transfer-Encoding: chunked"]) + b"10000000000000005\r\nhello\r\n0\r\n\r\n" + smuggled(k),
                 [("POST", target(k))], note="400")
    k = n(); add("chunk size '-5' (negative)",
                 head("POST", target(k), ["Transfer-Encoding: chunked"]) + b"-5\r\nhello\r\n0\r\n\r\n" + smuggled(k),
                 [("POST", target(k))], note="400")
    k = n(); add("missing CRLF after chunk data",
                 head("POST", target(k), ["Transfer-Encoding: chunked"]) + b"5\r\nhello0\r\n\r\n" + smuggled(k),
                 [("POST", target(k))], note="400")
    k = n(); add("two junk bytes instead of CRLF after chunk data",
                 head("POST", target(k), ["Transfer-Encoding: chunked"]) + b"5\r\nhelloXY0\r\n\r\n" + smuggled(k),
                 [("POST", target(k))], note="400")
    k = n(); add("chunk data longer than its size",
                 head("POST", target(k), ["Transfer-Encoding: chunked"]) + b"3\r\nhello\r\n0\r\n\r\n" + smuggled(k),
                 [("POST", target(k))], note="400")

    # --- trailers ---------------------------------------------------------------------------------
    k = n(); add("trailer section that holds a request",
                 head("POST", target(k), ["Transfer-Encoding: chunked"]) + b"5\r\nhello\r\n0\r\n" + smuggled(k),
                 [("POST", target(k))], note="'GET /... HTTP/1.1' is no field line: 400")
    k = n(); add("trailer section with Content-Length and Transfer-Encoding fields, then a request",
                 head("POST", target(k), ["Transfer-Encoding: chunked"])
                 + b"5\r\nhello\r\n0\r\nContent-Length: 0\r\nTransfer-Encoding: identity\r\n\r\n",
                 [("POST", target(k))], [b"hello"], "trailers must not change the framing")

    # --- Expect: 100-continue ---------------------------------------------------------------------
    k = n(); add("Expect: 100-continue, then a body that is a request",
                 [head("POST", target(k), ["Expect: 100-continue", f"Content-Length: {len(smuggled(k))}"]), WAIT_100, smuggled(k)],
                 [("POST", target(k))], [smuggled(k)])
    k = n(); add("Expect: 100-continue, then chunk data that is a fake end + request",
                 [head("POST", target(k), ["Expect: 100-continue", "Transfer-Encoding: chunked"]), WAIT_100, chunked(fake_end(k))],
                 [("POST", target(k))], [fake_end(k)])

    # --- HTTP/1.0 with Transfer-Encoding (RFC 9112 6.1: framing faulty, close after) -------------
    k = n(); add("HTTP/1.0 with Transfer-Encoding: chunked, chunk data is a fake end + request",
                 head("POST", target(k), ["Transfer-Encoding: chunked"], version="HTTP/1.0") + chunked(fake_end(k)),
                 [("POST", target(k))], note="RFC 9112 6.1: faulty framing, close")
    k = n(); add("HTTP/1.0 keep-alive with Content-Length + Transfer-Encoding (CL.TE)",
                 head("POST", target(k), ["Connection: keep-alive", f"Content-Length: {len(fake_end(k))}", "Transfer-Encoding: chunked"],
                      version="HTTP/1.0") + fake_end(k),
                 [("POST", target(k))], note="RFC 9112 6.1: faulty framing, close")
    return cases


# ---------------------------------------------------------------------------------------------
# Talking HTTP/1 by hand

class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body


def parse_responses(data, methods, closed):
    """The complete final responses in `data` (1xx skipped), framed as a client framing answers to
    `methods`; and whether bytes that are not (yet) a response follow them."""
    out, i = [], 0
    while i < len(data):
        end = data.find(b"\r\n\r\n", i)
        if end < 0:
            return out, True
        lines = data[i:end].decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
        if not m:
            return out, True
        status = int(m.group(1))
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        j = end + 4
        if 100 <= status < 200:
            i = j
            continue
        method = methods[len(out)] if len(out) < len(methods) else "GET"
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif "chunked" in ",".join(headers.get("transfer-encoding", [])).lower():
            body = b""
            while True:
                eol = data.find(b"\r\n", j)
                if eol < 0:
                    return out, True
                try:
                    size = int(data[j:eol].split(b";")[0], 16)
                except ValueError:
                    return out, True
                j = eol + 2
                if size == 0:
                    end_trailers = data.find(b"\r\n", j)
                    while end_trailers >= 0 and end_trailers != j:
                        j = end_trailers + 2
                        end_trailers = data.find(b"\r\n", j)
                    if end_trailers < 0:
                        return out, True
                    j += 2
                    break
                if len(data) < j + size + 2:
                    return out, True
                body += data[j:j + size]
                j += size + 2
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"][0])
            except ValueError:
                return out, True
            if len(data) < j + length:
                return out, True
            body = data[j:j + length]
            j += length
        else:
            if not closed:
                return out, True
            body = data[j:]
            j = len(data)
        out.append(Response(status, headers, body))
        i = j
    return out, False


class Conversation:
    def __init__(self):
        self.data = b""
        self.closed = False       # the server closed (or reset) the connection
        self.reset = False
        self.send_error = None
        self.responses = []

    def statuses(self):
        return [r.status for r in self.responses]


def converse(addr, parts, methods, connect_timeout=3.0):
    """Sends `parts` on a new connection and reads until the server closes, or is quiet for
    QUIET seconds, or AFTER_LAST seconds after len(methods) responses arrived."""
    c = Conversation()
    s = socket.create_connection(addr, timeout=connect_timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def read_some(timeout):
        r, _, _ = select.select([s], [], [], max(0.0, timeout))
        if not r:
            return False
        try:
            chunk_ = s.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError):
            c.closed = c.reset = True
            return True
        if not chunk_:
            c.closed = True
        c.data += chunk_
        return True

    try:
        for part in parts:
            if part is WAIT_100:
                deadline = time.time() + 0.5
                while not c.closed and time.time() < deadline and not re.search(rb"HTTP/1\.[01] \d{3}", c.data):
                    read_some(deadline - time.time())
                if c.closed or re.search(rb"HTTP/1\.[01] [2-5]\d\d", c.data):
                    break  # a final answer came instead: the body is not sent
                continue
            try:
                s.sendall(part)
            except OSError as e:
                c.send_error = e.__class__.__name__
                break
        start = last = time.time()
        while not c.closed:
            now = time.time()
            c.responses, _ = parse_responses(c.data, methods, False)
            wait = QUIET - (now - last)
            if len(c.responses) >= max(1, len(methods)):
                wait = min(wait, AFTER_LAST - (now - last))
            wait = min(wait, LONGEST - (now - start))
            if wait <= 0:
                break
            if read_some(wait):
                last = time.time()
    finally:
        s.close()
    c.responses, _ = parse_responses(c.data, methods, c.closed)
    return c


def plain_get(addr, path, timeout=3.0):
    """A GET on a new connection; its status, or None when no complete answer came within `timeout`."""
    try:
        s = socket.create_connection(addr, timeout=timeout)
    except OSError:
        return None
    deadline = time.time() + timeout
    data = b""
    try:
        s.sendall(head("GET", path))
        while time.time() < deadline:
            r, _, _ = select.select([s], [], [], deadline - time.time())
            if not r:
                break
            got = s.recv(65536)
            if not got:
                break
            data += got
            responses, _ = parse_responses(data, ["GET"], False)
            if responses:
                return responses[0].status
    except OSError:
        pass
    finally:
        s.close()
    responses, _ = parse_responses(data, ["GET"], True)
    return responses[0].status if responses else None


# ---------------------------------------------------------------------------------------------
# nginx's log

class AccessLog:
    def __init__(self, path):
        self.path = path

    def size(self):
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def settle(self, quiet=0.15, longest=2.0):
        """Waits until nothing was appended for `quiet` seconds."""
        deadline = time.time() + longest
        size, since = self.size(), time.time()
        while time.time() < deadline:
            time.sleep(0.03)
            now_size = self.size()
            if now_size != size:
                size, since = now_size, time.time()
            elif time.time() - since >= quiet:
                break

    def lines(self, start=0, end=None):
        try:
            with open(self.path, "rb") as f:
                f.seek(start)
                raw = f.read() if end is None else f.read(end - start)
        except OSError:
            return []
        out = []
        for line in raw.decode("latin-1").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"request": line, "method": "", "uri": "", "status": "?", "body": "", "unparsed": True})
        return out


def describe_line(e):
    what = f"{e['method']} {e['uri']}" if e.get("method") else f"garbage {e['request']!r}"
    extra = []
    if e.get("te"):
        extra.append(f"TE {e['te']!r}")
    if e.get("body"):
        extra.append(f"body {len(e['body'])} B")
    return f"{what} -> {e['status']}" + (f" ({', '.join(extra)})" if extra else "")


def is_smuggled(e):
    return "/smuggled-" in (e.get("uri") or "") or "/smuggled-" in (e.get("request") or "")


# ---------------------------------------------------------------------------------------------
# Judging a case

def judge(case, conv, lines):
    """(ok, summary) for one run of `case`: `conv` what the client got, `lines` what nginx logged."""
    statuses = conv.statuses()
    answered = ", ".join(map(str, statuses)) or "nothing"
    if conv.closed:
        answered += " then reset" if conv.reset else " then closed"
    elif statuses:
        answered += " (kept open)"
    saw = "; ".join(describe_line(e) for e in lines) or "nothing"
    smuggled_lines = [e for e in lines if is_smuggled(e)]
    first = statuses[0] if statuses else None
    refused = first is not None and (400 <= first < 500 or first == 501)
    got = [(e.get("method", ""), e.get("uri", "")) for e in lines]
    if smuggled_lines:
        return False, f"SMUGGLED: upstream saw {saw}; client got {answered}"
    if refused and not lines:
        return True, f"{first} from proxy, upstream saw nothing"
    if any(sorted(got) == sorted(want) for want in [case.expect] + case.alts):
        problems = []
        if case.bodies:
            for (method, path), want in zip(case.expect, case.bodies):
                if want is None:
                    continue
                for e in lines:
                    if (e["method"], e["uri"]) == (method, path) and e["status"] == "200":
                        have = e.get("body", "").encode("latin-1")
                        if have != want:
                            problems.append(f"{method} {path} arrived with body {have[:60]!r}, sent {want[:60]!r}")
        if problems:
            return False, f"upstream saw {saw}, but " + "; ".join(problems) + f"; client got {answered}"
        return True, f"upstream saw exactly {saw}; client got {answered}"
    expected = " or ".join(", ".join(f"{m} {p}" for m, p in want) for want in [case.expect] + case.alts)
    if not lines:
        return False, f"client got {answered}, upstream saw nothing (want a 4xx, or upstream seeing {expected})"
    return False, f"upstream saw {saw}, want exactly {expected} (or a 4xx and nothing); client got {answered}"


def run_direct(cases, verbose):
    """Each case straight to a separate nginx: (case, ok, summary) for the informational baseline."""
    port, d = start_nginx(NGINX_CONF)
    log = AccessLog(os.path.join(d, "requests.log"))
    results = []
    for case in cases:
        start = log.size()
        try:
            conv = converse(("127.0.0.1", port), case.parts, case.methods)
        except OSError as e:
            results.append((case, False, f"could not talk to nginx: {e}"))
            continue
        log.settle()
        lines = log.lines(start)
        ok, summary = judge(case, conv, lines)
        if verbose:
            summary += f"\n#     nginx answered {conv.data[:300]!r}"
        results.append((case, ok, summary.replace("from proxy", "from nginx")))
    return results


def run_proxy_case(case, app_port, log, verbose):
    start = log.size()
    proxy = Proxy("--inbound", "127.0.0.1:0", "--app", f"127.0.0.1:{app_port}", "--admin", "127.0.0.1:0")
    addr = proxy.addr("inbound")
    alive_path = f"/alive-{case.n:02d}"
    try:
        conv = converse(addr, case.parts, case.methods)
        alive = plain_get(addr, alive_path)
        exited = proxy.proc.poll()
    finally:
        proxy.stop()  # closes whatever upstream connections it kept: nginx logs what they held
    log.settle()
    all_lines = log.lines(start)
    lines = [e for e in all_lines if e.get("uri") != alive_path]
    alive_logged = any(e.get("uri") == alive_path for e in all_lines)
    ok, summary = judge(case, conv, lines)
    if exited is not None:
        ok = False
        summary += f"; the proxy EXITED (status {exited})"
    elif alive != 200:
        ok = False
        summary += f"; then a plain GET on a new connection got {alive or 'no answer in 3 s'}"
    elif not alive_logged:
        ok = False
        summary += "; then a plain GET was answered but nginx did not log it (is the log working?)"
    if verbose:
        summary += f"\n#     sent {b''.join(p for p in case.parts if isinstance(p, bytes))!r}\n#     proxy answered {conv.data[:300]!r}"
    return ok, summary


# ---------------------------------------------------------------------------------------------
# Early answer + abandoned body

EARLY_ROUNDS = 5
GETS_PER_ROUND = 20


def early_answer(addr):
    """POST /early with Content-Length 100000 and 10 bytes of it; read the answer (or 0.5 s); close."""
    s = socket.create_connection(addr, timeout=3)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = b""
    try:
        s.sendall(head("POST", "/early", ["Content-Length: 100000"]) + b"0123456789")
        deadline = time.time() + 0.5
        while time.time() < deadline:
            r, _, _ = select.select([s], [], [], deadline - time.time())
            if not r:
                break
            got = s.recv(65536)
            if not got:
                break
            data += got
            if parse_responses(data, ["POST"], False)[0]:
                break
    except OSError:
        pass
    finally:
        s.close()
    responses, _ = parse_responses(data, ["POST"], True)
    return responses[0].status if responses else None


def run_early(addr):
    """The rounds: ([(k, status of GET k)] for the GETs not answered 200, [status of each POST /early])."""
    failures, early_statuses = [], []
    for rnd in range(EARLY_ROUNDS):
        early_statuses.append(early_answer(addr))
        missed_in_row = 0
        for i in range(GETS_PER_ROUND):
            k = rnd * GETS_PER_ROUND + i
            status = plain_get(addr, f"/case-after-{k:03d}")
            if status != 200:
                failures.append((k, status))
                missed_in_row += 1
                if missed_in_row >= 3:  # do not spend 3 s on each of the rest
                    for j in range(i + 1, GETS_PER_ROUND):
                        failures.append((rnd * GETS_PER_ROUND + j, "not tried"))
                    break
            else:
                missed_in_row = 0
    return failures, early_statuses


def early_lines_check(lines, failures):
    """Whether nginx saw exactly the five /early and one of each answered /case-after-k."""
    answered = {f"/case-after-{k:03d}" for k in range(EARLY_ROUNDS * GETS_PER_ROUND)} - {f"/case-after-{k:03d}" for k, _ in failures}
    counts = {}
    for e in lines:
        counts[(e.get("method"), e.get("uri"))] = counts.get((e.get("method"), e.get("uri")), 0) + 1
    problems = []
    if counts.get(("POST", "/early"), 0) != EARLY_ROUNDS:
        problems.append(f"{counts.get(('POST', '/early'), 0)} POST /early (want {EARLY_ROUNDS})")
    missing = sorted(p for p in answered if counts.get(("GET", p), 0) != 1)
    if missing:
        problems.append(f"answered GETs not logged exactly once: {', '.join(missing[:5])}")
    extra = [e for e in lines if (e.get("method"), e.get("uri")) != ("POST", "/early")
             and not (e.get("method") == "GET" and (e.get("uri") or "").startswith("/case-after-"))]
    if extra:
        problems.append("other requests: " + "; ".join(describe_line(e) for e in extra[:5]))
    return problems


def early_check(report, app_port, log):
    start = log.size()
    proxy = Proxy("--inbound", "127.0.0.1:0", "--app", f"127.0.0.1:{app_port}", "--admin", "127.0.0.1:0")
    addr = proxy.addr("inbound")
    try:
        failures, early_statuses = run_early(addr)
        exited = proxy.proc.poll()
    finally:
        proxy.stop()
    log.settle()
    lines = log.lines(start)
    total = EARLY_ROUNDS * GETS_PER_ROUND
    first_fail = ""
    if failures:
        by_round = {}
        for k, status in failures:
            by_round.setdefault(k // GETS_PER_ROUND, []).append((k, status))
        first_fail = "; ".join(
            f"round {r + 1}: " + ", ".join(f"#{k % GETS_PER_ROUND + 1} {'no answer in 3 s' if s is None else s}" for k, s in fs[:4])
            + (f" (+{len(fs) - 4} more)" if len(fs) > 4 else "")
            for r, fs in sorted(by_round.items()))
    msg = (f"early answer + abandoned body: the proxy passed on {', '.join(str(s) for s in early_statuses)} for POST /early; "
           f"{total - len(failures)}/{total} later GETs on new connections answered 200 within 3 s")
    if first_fail:
        msg += f" -- missed: {first_fail}"
    if exited is not None:
        msg += f"; the proxy EXITED (status {exited})"
    report.check(not failures and exited is None and all(s == 404 for s in early_statuses), msg)
    problems = early_lines_check(lines, failures)
    report.check(not problems and not any(is_smuggled(e) for e in lines),
                 "early answer + abandoned body: upstream saw exactly the 5 POST /early and each answered GET once"
                 + (" -- " + "; ".join(problems) if problems else ""))


def early_direct(port):
    failures, statuses = run_early(("127.0.0.1", port))
    total = EARLY_ROUNDS * GETS_PER_ROUND
    return f"early answer + abandoned body: nginx answered {', '.join(map(str, statuses))}; {total - len(failures)}/{total} GETs answered 200"


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", action="append", default=[], help="run only cases whose name contains this (repeatable; 'early' for the early-answer check)")
    ap.add_argument("--direct", action="store_true", help="only the direct-to-nginx baseline")
    ap.add_argument("--list", action="store_true", help="list the cases")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    cases = build_cases()
    if args.list:
        for c in cases:
            print(f"{c.n:3d}  {c.name}" + (f"   [{c.note}]" if c.note else ""))
        print("     early answer + abandoned body")
        return

    def wanted(name):
        return not args.case or any(f.lower() in name.lower() for f in args.case)

    selected = [c for c in cases if wanted(c.name)]
    run_early_check = wanted("early answer + abandoned body")

    report = Report()
    baseline = {}
    direct_thread = None

    def direct_all():
        try:
            baseline["cases"] = run_direct(selected, args.verbose)
            if run_early_check:
                port, _ = start_nginx(NGINX_CONF)
                baseline["early"] = early_direct(port)
        except Exception as e:  # informational only
            baseline["error"] = f"{e.__class__.__name__}: {e}"

    if args.direct:
        direct_all()
    else:
        binary("meshproxy")  # exits with a clear message when it is not built
        direct_thread = threading.Thread(target=direct_all, daemon=True)
        direct_thread.start()

        port, d = start_nginx(NGINX_CONF)
        log = AccessLog(os.path.join(d, "requests.log"))

        # Controls: nginx logs what it gets, directly and through a proxy; else nothing below means anything.
        status = plain_get(("127.0.0.1", port), "/control-direct")
        log.settle()
        logged = [e for e in log.lines() if e.get("uri") == "/control-direct"]
        report.check(status == 200 and len(logged) == 1,
                     f"control: nginx answered a GET directly ({status}) and logged it ({len(logged)} line)")
        proxy = Proxy("--inbound", "127.0.0.1:0", "--app", f"127.0.0.1:{port}", "--admin", "127.0.0.1:0")
        try:
            status = plain_get(proxy.addr("inbound"), "/control-proxy")
        finally:
            proxy.stop()
        log.settle()
        logged = [e for e in log.lines() if e.get("uri") == "/control-proxy"]
        if not report.check(status == 200 and len(logged) == 1,
                            f"control: a GET through meshproxy was answered ({status}) and nginx logged it ({len(logged)} line)"):
            report.finish()

        for case in selected:
            ok, summary = run_proxy_case(case, port, log, args.verbose)
            report.check(ok, f"{case.name} [{target(case.n)}]: {summary}")

        if run_early_check:
            early_check(report, port, log)

        log.settle()
        everything = log.lines()
        smuggled_lines = [e for e in everything if is_smuggled(e)]
        report.check(not smuggled_lines, f"no /smuggled- request reached nginx over the whole run ({len(everything)} requests logged)"
                     + (": " + "; ".join(describe_line(e) for e in smuggled_lines[:10]) if smuggled_lines else ""))
        direct_thread.join(120)

    print("# direct to nginx (baseline, informational; nginx's own parser, no proxy):")
    if "error" in baseline:
        print(f"#   baseline failed: {baseline['error']}")
    for case, ok, summary in baseline.get("cases", []):
        print(f"#   {'same as pass' if ok else 'WOULD FAIL  '}  {case.name} [{target(case.n)}]: {summary}")
    if "early" in baseline:
        print(f"#   {baseline['early']}")
    if args.direct:
        print(f"# {sum(1 for _, ok, _ in baseline.get('cases', []) if ok)} of {len(baseline.get('cases', []))} cases would pass against nginx alone")
        return
    report.finish()


if __name__ == "__main__":
    main()
