#!/usr/bin/env python3
"""Opens COUNT keep-alive HTTP/1.1 connections to 127.0.0.1:PORT, sends one GET on each and reads
its answer, then holds them all open: prints "held N" and waits for a line (or EOF) on standard
input before closing them. bench-proxy measures a proxy's RSS meanwhile (memory per idle connection).

    python3 scripts/lib/hold-connections.py PORT COUNT
"""
import resource
import socket
import sys


def read_answer(s, n):
    """One response with a Content-Length body (what bench-proxy's nginx sends), whole."""
    answer = b""
    while True:
        head, sep, body = answer.partition(b"\r\n\r\n")
        if sep:
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                           if line.lower().startswith(b"content-length:")), None)
            if length is None:
                sys.exit(f"hold-connections: connection {n}: an answer without Content-Length: {head[:200]!r}")
            if len(body) >= length:
                return answer
        chunk = s.recv(4096)
        if not chunk:
            sys.exit(f"hold-connections: connection {n} closed before its answer: {answer[:200]!r}")
        answer += chunk


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    port, count = int(sys.argv[1]), int(sys.argv[2])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < count + 64:
        sys.exit(f"hold-connections: {count} connections need {count + 64} open files; the limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (count + 64 if hard == resource.RLIM_INFINITY else hard, hard))
    held = []
    request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    for i in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(request)
        answer = read_answer(s, i + 1)
        if not answer.startswith(b"HTTP/1.1 200"):
            sys.exit(f"hold-connections: connection {i + 1} got {answer[:80]!r}")
        held.append(s)
    print(f"held {len(held)}", flush=True)
    sys.stdin.readline()
    for s in held:
        s.close()


if __name__ == "__main__":
    main()
