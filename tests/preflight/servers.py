"""Real servers on loopback for the probe tests: dnsmasq, TLS endpoints with trustme
certificates, a nameserver that never answers, and a listener that drops connections."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import trustme


def free_udp_port(address: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


@dataclass
class Dnsmasq:
    """dnsmasq on 127.0.0.1 and an ephemeral port, answering only what it is told."""

    args: Sequence[str]
    workdir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Dnsmasq:
        binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        for _ in range(5):
            self.port = free_udp_port()
            log = (self.workdir / f"dnsmasq-{self.port}.log").open("wb")
            self.process = subprocess.Popen(
                [
                    binary,
                    "--keep-in-foreground",
                    "--no-resolv",
                    "--no-hosts",
                    "--no-poll",
                    "--bind-interfaces",
                    "--listen-address=127.0.0.1",
                    f"--port={self.port}",
                    "--pid-file=",
                    "--log-facility=-",
                    "--cache-size=0",
                    *(["--user=root"] if os.geteuid() == 0 else []),
                    *self.args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
            if self._wait_ready():
                return self
            self.stop()
        raise RuntimeError("dnsmasq did not start; see " + str(self.workdir))

    def _wait_ready(self) -> bool:
        query = dns.message.make_query("ready.invalid.", "A")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            with contextlib.suppress(dns.exception.Timeout, OSError):
                dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.1)
                return True
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@contextlib.contextmanager
def silent_nameserver() -> Iterator[str]:
    """A UDP socket that is bound and never read: queries to it time out."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@contextlib.contextmanager
def closed_port(address: str = "127.0.0.1") -> Iterator[int]:
    """A TCP port that is bound but not listening: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        yield int(sock.getsockname()[1])


@contextlib.contextmanager
def stalled_listener(address: str = "127.0.0.1") -> Iterator[int]:
    """Accepts TCP connections (the kernel does) but never reads: a TLS handshake stalls."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


@contextlib.contextmanager
def dropping_listener(address: str = "127.0.0.1") -> Iterator[int]:
    """A listener whose accept queue is full: the kernel drops new SYNs, so a connect
    times out exactly like one to a filtered port (no packet leaves loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        sock.listen(0)
        port = int(sock.getsockname()[1])
        fillers = []
        try:
            for _ in range(3):
                filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect((address, port))
                fillers.append(filler)
            time.sleep(0.05)
            yield port
        finally:
            for filler in fillers:
                filler.close()


class _Handler(BaseHTTPRequestHandler):
    server_version = "aksflight-test"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        assert isinstance(self.server, _QuietServer)
        self.server.requests.append(self.headers.get("Host", ""))
        body = b"not found\n"
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    """Counts connections; handshakes the probes reject on purpose are not printed."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.accepted = 0
        self.requests: list[str] = []

    def get_request(self) -> tuple[socket.socket, object]:
        request = super().get_request()
        self.accepted += 1
        return request

    def handle_error(self, request: object, client_address: object) -> None:
        pass


@dataclass
class TLSServer:
    """An HTTPS server on `address` presenting `cert` (a trustme leaf); the handshake
    happens in the handler thread, so a stalled client holds up nobody else."""

    address: str
    cert: trustme.LeafCert
    port: int = 0
    _server: _QuietServer | None = None

    def start(self) -> TLSServer:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.cert.configure_cert(context)
        server = _QuietServer((self.address, 0))
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        self.port = int(server.server_address[1])
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        assert self._server is not None
        return self._server.accepted

    @property
    def host_headers(self) -> list[str]:
        """The Host header of every request served."""
        assert self._server is not None
        return self._server.requests

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _ConnectHandler(BaseHTTPRequestHandler):
    """CONNECT host:port → a tunnel, resolving the host from the proxy's own table."""

    protocol_version = "HTTP/1.1"

    def do_CONNECT(self) -> None:
        proxy = self.server
        assert isinstance(proxy, _ProxyServer)
        host, _, port = self.path.rpartition(":")
        proxy.targets.append(self.path)
        if host in proxy.deny or host not in proxy.names:
            self.send_error(403, "denied by policy")
            return
        try:
            upstream = socket.create_connection((proxy.names[host], int(port)), timeout=5)
        except OSError:
            self.send_error(502)
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        _pipe(self.connection, upstream)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _pipe(client: socket.socket, upstream: socket.socket) -> None:
    def copy(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    other = threading.Thread(target=copy, args=(upstream, client), daemon=True)
    other.start()
    copy(client, upstream)
    other.join(timeout=5)
    upstream.close()


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, names: dict[str, str], deny: set[str]) -> None:
        super().__init__(("127.0.0.1", 0), _ConnectHandler)
        self.names = names
        self.deny = deny
        self.targets: list[str] = []

    def handle_error(self, request: object, client_address: object) -> None:
        pass


@contextlib.contextmanager
def connect_proxy(
    names: dict[str, str], deny: Sequence[str] = ()
) -> Iterator[tuple[str, list[str]]]:
    """An HTTP CONNECT proxy on loopback: yields its URL and the CONNECT targets it saw."""
    server = _ProxyServer(dict(names), set(deny))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.targets
    finally:
        server.shutdown()
        server.server_close()
