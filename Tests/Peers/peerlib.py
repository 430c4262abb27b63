"""Helpers for the peer tests: real clients and servers nobody here wrote (nginx, grpcio,
websockets, curl, h2load) around real meshproxy processes.

Each test script prints one line per check ("ok - ..." / "not ok - ...") and ends with the
plain closing line "N passed, N failed"; it exits non-zero when anything failed.
"""
import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import urllib.error

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def binary(name):
    """The built executable `name` (MESHTOP_BIN_DIR, else .build/debug)."""
    bin_dir = os.environ.get("MESHTOP_BIN_DIR", os.path.join(ROOT, ".build", "debug"))
    path = os.path.join(bin_dir, name)
    if not os.access(path, os.X_OK):
        sys.exit(f"peer tests: {path} is not built (run `swift build` first)")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_children = []


def _cleanup():
    for p in _children:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_cleanup)


def spawn(args, **kw):
    p = subprocess.Popen(args, **kw)
    _children.append(p)
    return p


class Proxy:
    """A meshproxy process; its bound addresses read from its 'listening:' line."""

    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="meshproxy-peer-")
        self.log_path = os.path.join(self.dir, "stderr")
        self.log = open(self.log_path, "w")
        self.proc = spawn([binary("meshproxy")] + list(args), stderr=self.log, stdout=subprocess.DEVNULL)
        deadline = time.time() + 20
        self.addresses = {}
        while time.time() < deadline:
            text = open(self.log_path).read()
            m = re.search(r"listening: (.*)", text)
            if m:
                for part in m.group(1).split(", "):
                    words = part.split()
                    if len(words) >= 2:
                        self.addresses[words[0]] = words[1]
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"meshproxy exited: {text}")
            time.sleep(0.05)
        else:
            raise RuntimeError("meshproxy never said where it listens")
        if "identity" in self.addresses and "admin" in self.addresses:
            self.wait_ready(deadline)

    def wait_ready(self, deadline):
        """A proxy with an identity service serves at once and is ready once certified."""
        host, port = self.addr("admin")
        body = ""
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://{host}:{port}/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except urllib.error.HTTPError as e:
                body = e.read().decode(errors="replace")
            except OSError as e:
                body = str(e)
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"meshproxy never became ready ({body.strip()}): {open(self.log_path).read()}")

    def addr(self, name):
        host, port = self.addresses[name].rsplit(":", 1)
        return host, int(port)

    def metrics(self):
        host, port = self.addr("admin")
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as r:
            return r.read().decode()

    def rss_kb(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def metric_sum(text, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def write_destinations(path, destinations):
    """destinations: [(authority, [(address, identity or None, labels dict)])]."""
    lines = ["destinations:"]
    for authority, endpoints in destinations:
        lines += [f"  - authority: {authority}", "    backends:", "      - endpoints:"]
        for address, identity, labels in endpoints:
            lines.append(f"          - address: {address}")
            if labels:
                lines.append("            labels: {" + ", ".join(f"{k}: {v}" for k, v in labels.items()) + "}")
            if identity:
                lines.append(f"            identity: {identity}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
            print(f"ok - {what}", flush=True)
        else:
            self.failed += 1
            print(f"not ok - {what}", flush=True)
        return ok

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed else 0)


# --- A two-proxy mesh (client proxy outbound -> server proxy inbound -> app), plain or mTLS ---

def identity_init(directory):
    """`meshproxy identity init --dir directory`: a fresh certificate authority."""
    r = subprocess.run([binary("meshproxy"), "identity", "init", "--dir", directory],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"meshproxy identity init failed: {r.stderr.decode(errors='replace')}")


class IdentityService:
    """`meshproxy identity serve` over the authority in `ca` with a token per service account
    (`accounts`: [(namespace, name)]); `proxy_args(namespace, name)` are the flags a proxy of that
    account needs: the service, the trust anchor, its token. Proxies never see the issuer key."""

    def __init__(self, ca, accounts):
        self.ca = ca
        self.tokens = {}
        lines = []
        for namespace, name in accounts:
            token = os.urandom(16).hex()
            self.tokens[(namespace, name)] = os.path.join(ca, f"{namespace}.{name}.token")
            with open(self.tokens[(namespace, name)], "w") as f:
                f.write(token)
            lines.append(f"{namespace}/{name} {token}")
        with open(os.path.join(ca, "tokens"), "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log_path = os.path.join(ca, "identity.log")
        self.log = open(self.log_path, "w")
        self.proc = spawn([binary("meshproxy"), "identity", "serve", "--dir", ca, "--tokens", os.path.join(ca, "tokens"),
                           "--listen", "127.0.0.1:0"], stderr=self.log, stdout=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            m = re.search(r"signing CSRs on (\S+)", open(self.log_path).read())
            if m:
                self.address = m.group(1)
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"meshproxy identity serve exited: {open(self.log_path).read()}")
            time.sleep(0.05)
        raise RuntimeError("meshproxy identity serve never said where it listens")

    def proxy_args(self, namespace, name):
        return ["--identity-service", self.address, "--trust-anchor", os.path.join(self.ca, "ca.crt"),
                "--identity-token-file", self.tokens[(namespace, name)]]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.log.close()


class MeshPair:
    """Two meshproxy processes: `server` (--inbound -> the app at 127.0.0.1:app_port) and `client`
    (--outbound, whose destinations file sends `authority` to the server's inbound). With mtls=True
    both get identities (namespace `namespace`, deployments `server` and `client`) by CSR from an
    identity service over a fresh authority, and the destination carries the server's identity so the hop between them is mTLS.
    Clients send to `outbound_address()` with the Host/:authority set to `authority`."""

    def __init__(self, app_port, authority, mtls=False, namespace="peer"):
        self.dir = tempfile.mkdtemp(prefix="meshpair-")
        self.authority = authority
        self.mtls = mtls
        self.server = self.client = self.identity = None
        server_args, client_args = [], []
        if mtls:
            ca = os.path.join(self.dir, "identity")
            identity_init(ca)
            self.identity = IdentityService(ca, [(namespace, "server"), (namespace, "client")])
            server_args = self.identity.proxy_args(namespace, "server") + ["--label", f"namespace={namespace}", "--label", "deployment=server"]
            client_args = self.identity.proxy_args(namespace, "client") + ["--label", f"namespace={namespace}", "--label", "deployment=client"]
        self.server = Proxy("--inbound", "127.0.0.1:0", "--app", f"127.0.0.1:{app_port}",
                            "--admin", "127.0.0.1:0", *server_args)
        self.server_identity = self.server.addresses.get("identity") if mtls else None
        host, port = self.server.addr("inbound")
        self.destinations = os.path.join(self.dir, "destinations.yaml")
        write_destinations(self.destinations, [(authority, [(f"{host}:{port}", self.server_identity, {})])])
        try:
            self.client = Proxy("--outbound", "127.0.0.1:0", "--destinations", self.destinations,
                                "--admin", "127.0.0.1:0", *client_args)
        except Exception:
            self.server.stop()
            raise
        self.client_identity = self.client.addresses.get("identity") if mtls else None

    def outbound_address(self):
        return self.client.addr("outbound")

    def logs(self):
        """The stderr of both proxies so far: {"server": text, "client": text}."""
        out = {}
        for name, p in (("server", self.server), ("client", self.client)):
            try:
                out[name] = open(p.log_path, errors="replace").read() if p else ""
            except OSError:
                out[name] = ""
        return out

    def stop(self):
        for p in (self.client, self.server, self.identity):
            if p:
                p.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def metric_samples(text, name, **labels):
    """[(labels dict, value)] of the samples of `name` whose labels include `labels`."""
    out = []
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', head))
        if all(found.get(k) == str(v) for k, v in labels.items()):
            out.append((found, float(value)))
    return out


_nginx = {}


def start_nginx(conf_body, timeout=10):
    """Starts nginx in the foreground with `conf_body` as the contents of its `http { }` block;
    `{port}` in it becomes a free 127.0.0.1 port, `{dir}` the instance's own temp directory (for
    logs, unix sockets, files to serve). pid file, error log (`{dir}/error.log`) and temp paths live
    in that directory; nothing is logged anywhere else unless `conf_body` says so. Returns (port, dir);
    `stop_nginx(dir)` ends it early, else it dies with the test."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    last_error = ""
    for _ in range(3):  # the port may be taken between free_port() and nginx's bind
        d = tempfile.mkdtemp(prefix="nginx-peer-")
        port = free_port()
        body = conf_body.replace("{port}", str(port)).replace("{dir}", d)
        conf = "\n".join([
            "daemon off;",
            "master_process off;",
            "worker_processes 1;",
            "user root;" if os.geteuid() == 0 else "",
            f"pid {d}/nginx.pid;",
            f"error_log {d}/error.log info;",
            "events { worker_connections 1024; }",
            "http {",
            f"    client_body_temp_path {d}/client_body;",
            f"    proxy_temp_path {d}/proxy;",
            f"    fastcgi_temp_path {d}/fastcgi;",
            f"    uwsgi_temp_path {d}/uwsgi;",
            f"    scgi_temp_path {d}/scgi;",
            "    access_log off;",
            "    default_type text/plain;",
            body,
            "}",
            "",
        ])
        path = os.path.join(d, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        err = open(os.path.join(d, "stderr"), "w")
        proc = spawn([nginx, "-p", d, "-c", path, "-e", f"{d}/error.log"], stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                _nginx[d] = proc
                return port, d
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        last_error = open(os.path.join(d, "error.log")).read()[-2000:] if os.path.exists(os.path.join(d, "error.log")) else ""
        if "Address already in use" not in last_error:
            break
    raise RuntimeError(f"nginx did not start: {last_error}")


def _stop_all_nginx():
    for d in list(_nginx):
        stop_nginx(d)


atexit.register(_stop_all_nginx)


def stop_nginx(d):
    proc = _nginx.pop(d, None)
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    shutil.rmtree(d, ignore_errors=True)
