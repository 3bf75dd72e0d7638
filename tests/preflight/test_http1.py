"""The direct HTTP exchange against a loopback server that sends scripted bytes: what
reaches the server, interim responses, heads split into pieces, and peers that do not
speak HTTP."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator, Sequence

import pytest

from preflight.http import probe_http
from preflight.options import ProbeOptions
from rules.model import CheckKind, Observation, ProbeStatus
from tests.preflight.conftest import check, probe_once, run

HOST = "svc.example.com"


@contextlib.contextmanager
def scripted_server(
    replies: Sequence[bytes], pause: float = 0.0
) -> Iterator[tuple[int, list[bytes]]]:
    """Accepts one connection, reads the request, sends `replies` one by one (`pause`
    between them), then closes. Yields the port and the requests it read."""
    requests: list[bytes] = []
    server = socket.create_server(("127.0.0.3", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = server.accept()
            with conn:
                requests.append(conn.recv(65536))
                for piece in replies:
                    conn.sendall(piece)
                    time.sleep(pause)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], requests
    finally:
        server.close()
        thread.join(timeout=5)


def get(port: int, timeout: float = 2.0) -> Observation:
    target = check(CheckKind.HTTP, HOST, port)
    options = ProbeOptions(timeout=timeout)

    async def main() -> Observation:
        return await probe_once(
            lambda c, ctx, a: probe_http(c, ctx, a, scheme="http"), target, options, ["127.0.0.3"]
        )

    return run(main())


def test_the_request_names_the_host_and_asks_to_close() -> None:
    with scripted_server([b"HTTP/1.1 204 No Content\r\nServer: edge \r\n\r\n"]) as (port, seen):
        obs = get(port)
    assert obs.status is ProbeStatus.OK, obs.detail
    assert obs.evidence["status_code"] == 204
    assert obs.evidence["server_header"] == "edge"
    assert obs.evidence["http_version"] == "HTTP/1.1"
    head = seen[0].decode("ascii").split("\r\n")
    assert head[0] == "GET / HTTP/1.1"
    assert f"Host: {HOST}:{port}" in head
    assert "User-Agent: aksflight-preflight" in head
    assert "Connection: close" in head


def test_a_head_split_into_single_bytes() -> None:
    head = b"HTTP/1.0 403 Forbidden\r\nServer: a\r\nServer: b\r\nContent-Length: 0\r\n\r\n"
    with scripted_server([head[i : i + 1] for i in range(len(head))], pause=0.001) as (port, _):
        obs = get(port)
    assert obs.status is ProbeStatus.OK, obs.detail
    assert obs.evidence["status_code"] == 403
    assert obs.evidence["http_version"] == "HTTP/1.0"
    assert obs.evidence["server_header"] == "a, b"


def test_interim_responses_are_read_past() -> None:
    replies = [
        b"HTTP/1.1 103 Early Hints\r\nServer: hints\r\nLink: </a.css>\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nServer: final\r\nContent-Length: 2\r\n\r\nok",
    ]
    with scripted_server(replies, pause=0.05) as (port, _):
        obs = get(port)
    assert (obs.evidence["status_code"], obs.evidence["server_header"]) == (200, "final")


def test_a_body_that_does_not_parse_after_the_head_does_not_matter() -> None:
    reply = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 1\r\n\r\nxHTTP garbage \x00\x01"
    with scripted_server([reply]) as (port, _):
        obs = get(port)
    assert obs.status is ProbeStatus.OK
    assert obs.evidence["status_code"] == 502


@pytest.mark.parametrize(
    "replies",
    [[], [b"SSH-2.0-OpenSSH_9.6\r\n"], [b"HTTP/1.1 200 OK\r\nServer: cut"]],
    ids=["closed-at-once", "not-http", "closed-mid-head"],
)
def test_no_http_response_is_an_error(replies: list[bytes]) -> None:
    with scripted_server(replies) as (port, _):
        obs = get(port)
    assert obs.status is ProbeStatus.ERROR
    assert obs.detail.startswith("ResponseError: ")
    assert obs.evidence["status_code"] is None


def test_a_head_that_never_ends_times_out() -> None:
    with scripted_server([b"HTTP/1.1 200 OK\r\n", b"X-Slow: 1\r\n"], pause=1.0) as (port, _):
        obs = get(port, timeout=0.4)
    assert obs.status is ProbeStatus.TIMEOUT
    assert 350 <= obs.duration_ms < 1500
