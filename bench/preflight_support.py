"""Loopback endpoints for the preflight benchmarks: dnsmasq answering N names with
distinct 127.x addresses, nginx terminating TLS for all of them (a trustme wildcard
certificate), and listeners that drop connections like a firewall would."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import trustme

DOMAIN = "bench.test"


def host_name(index: int) -> str:
    return f"h{index:04d}.{DOMAIN}"


def host_address(index: int) -> str:
    return f"127.1.{index // 250}.{index % 250 + 1}"


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass(frozen=True)
class Endpoints:
    nameserver: str
    https_port: int
    drop_port: int
    ca_bundle: Path


@contextlib.contextmanager
def dropping_listener() -> Iterator[int]:
    """A full accept queue: the kernel drops new SYNs, so connects time out."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen(0)
        port = int(sock.getsockname()[1])
        fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.05)
        try:
            yield port
        finally:
            for filler in fillers:
                filler.close()


def _start_dnsmasq(workdir: Path, count: int) -> tuple[subprocess.Popen[bytes], int]:
    hosts = workdir / "hosts"
    hosts.write_text("".join(f"{host_address(i)} {host_name(i)}\n" for i in range(count)))
    for _ in range(5):  # the free port may be taken before dnsmasq binds it
        with contextlib.suppress(RuntimeError):
            return _try_dnsmasq(workdir, hosts)
    raise RuntimeError(f"dnsmasq did not start; see {workdir}/dnsmasq.log")


def _try_dnsmasq(workdir: Path, hosts: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port(socket.SOCK_DGRAM)
    binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    process = subprocess.Popen(
        [
            binary,
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            f"--port={port}",
            "--pid-file=",
            f"--addn-hosts={hosts}",
            f"--local=/{DOMAIN}/",
            "--dns-forward-max=5000",
            "--cache-size=10000",
            *(["--user=root"] if os.geteuid() == 0 else []),
            "--log-facility=-",
        ],
        stdout=(workdir / "dnsmasq.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    query = dns.message.make_query(host_name(0), "A")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(dns.exception.Timeout, OSError):
            dns.query.udp(query, "127.0.0.1", port=port, timeout=0.1)
            return process, port
    _stop(process)
    raise RuntimeError(f"dnsmasq did not start; see {workdir}/dnsmasq.log")


def _start_nginx(workdir: Path, ca: trustme.CA) -> tuple[subprocess.Popen[bytes], int]:
    leaf = ca.issue_cert(f"*.{DOMAIN}")
    leaf.private_key_and_cert_chain_pem.write_to_path(str(workdir / "leaf.pem"))
    port = _free_port(socket.SOCK_STREAM)
    (workdir / "nginx.conf").write_text(
        f"""
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log error;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server {{
        listen {port} ssl backlog=4096;
        ssl_certificate {workdir}/leaf.pem;
        ssl_certificate_key {workdir}/leaf.pem;
        location / {{ return 404; }}
    }}
}}
"""
    )
    process = subprocess.Popen(
        ["nginx", "-p", str(workdir), "-e", str(workdir / "error.log"), "-c",
         str(workdir / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
            return process, port
        time.sleep(0.02)
    _stop(process)
    raise RuntimeError(f"nginx did not start; see {workdir}/error.log")


@contextlib.contextmanager
def endpoints(workdir: Path, count: int) -> Iterator[Endpoints]:
    """Everything the benchmarks connect to, stopped by pid when done."""
    ca = trustme.CA()
    bundle = workdir / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    dnsmasq, dns_port = _start_dnsmasq(workdir, count)
    try:
        nginx, https_port = _start_nginx(workdir, ca)
        try:
            with dropping_listener() as drop_port:
                yield Endpoints(f"127.0.0.1:{dns_port}", https_port, drop_port, bundle)
        finally:
            _stop(nginx)
    finally:
        _stop(dnsmasq)
