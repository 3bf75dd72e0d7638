"""The endpoint server on loopback (no root needed): HTTPS, keep-alive, HEAD, plain TCP."""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aksflight.lab.certs import create_authorities

HOST = "svc.example.com"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, object]]:
    authorities = create_authorities(tmp_path)
    (tmp_path / "certs").mkdir()
    ports = {"https": free_port(), "http": free_port(), "tcp": free_port(), "other": free_port()}
    listeners = [
        {"host": HOST, "address": "127.0.0.1", "port": ports["https"], "mode": "https"},
        {"host": HOST, "address": "127.0.0.1", "port": ports["http"], "mode": "http"},
        {"host": HOST, "address": "127.0.0.1", "port": ports["tcp"], "mode": "tcp"},
        {
            "host": "other.example.com",
            "address": "127.0.0.1",
            "port": ports["other"],
            "mode": "https",
            "ca": "other",
        },
    ]
    config = {
        "authorities": {
            "lab": {"cert": str(authorities.lab.cert), "key": str(authorities.lab.key)},
            "other": {"cert": str(authorities.other.cert), "key": str(authorities.other.key)},
        },
        "certs_dir": str(tmp_path / "certs"),
        "listeners": listeners,
    }
    config_path = tmp_path / "endpoints.json"
    config_path.write_text(json.dumps(config))
    process = subprocess.Popen(
        [sys.executable, "-m", "aksflight.lab.endpoints", str(config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], 20)
    assert readable and os.read(process.stdout.fileno(), 16) == b"ready\n"
    yield {"ports": ports, "ca": str(authorities.lab.cert), "other_ca": str(authorities.other.cert)}
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(timeout=5) == 0
    process.stdout.close()
    assert process.stderr is not None
    process.stderr.close()


def https(server: dict[str, object], cafile: str, port_name: str = "https", name: str = HOST):
    context = ssl.create_default_context(cafile=cafile)
    ports = server["ports"]
    assert isinstance(ports, dict)
    # Connect to the address, with SNI and the hostname check on the name (as probes do).
    sock = socket.create_connection(("127.0.0.1", ports[port_name]), timeout=5)
    connection = http.client.HTTPConnection("127.0.0.1", ports[port_name])
    connection.sock = context.wrap_socket(sock, server_hostname=name)
    return connection


def test_https_keep_alive_serves_several_requests_on_one_connection(server) -> None:
    connection = https(server, server["ca"])
    for path in ("/v2/", "/health"):
        connection.request("GET", path, headers={"Host": HOST})
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("connection") is None
        assert response.read().decode() == f"aksflight lab endpoint {HOST} {path}\n"
    connection.request("HEAD", "/", headers={"Host": HOST})
    head = connection.getresponse()
    assert head.status == 200
    assert head.read() == b""
    connection.close()


def test_certificate_names_the_host_and_its_issuer(server) -> None:
    connection = https(server, server["ca"])
    certificate = connection.sock.getpeercert()
    assert ("DNS", HOST) in certificate["subjectAltName"]
    assert dict(x[0] for x in certificate["issuer"])["organizationName"] == "aksflight lab CA"
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        https(server, server["ca"], name="elsewhere.example.com")


def test_other_ca_is_not_trusted_by_the_lab_bundle(server) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        https(server, server["ca"], port_name="other", name="other.example.com")
    trusted = https(server, server["other_ca"], port_name="other", name="other.example.com")
    trusted.request("GET", "/", headers={"Host": "other.example.com"})
    assert trusted.getresponse().status == 200


def test_plain_http_and_connection_close(server) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server["ports"]["http"], timeout=5)
    connection.request("GET", "/x", headers={"Connection": "close"})
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("connection") == "close"
    assert response.read().endswith(b" /x\n")


def test_tcp_port_accepts_and_garbage_http_gets_400(server) -> None:
    with socket.create_connection(("127.0.0.1", server["ports"]["tcp"]), timeout=5) as sock:
        sock.sendall(b"\x00\x01 not a protocol")
    with socket.create_connection(("127.0.0.1", server["ports"]["http"]), timeout=5) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        answer = sock.recv(200)
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert b"connection: close" in answer.lower()
