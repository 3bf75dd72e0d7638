"""The HTTP probe: a GET sent to the address DNS found with the name in Host and SNI,
directly on the connection TCP and TLS opened, or through a real CONNECT proxy."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import trustme

from preflight.context import ProbeContext, bypasses_proxy
from preflight.http import probe_http
from preflight.options import ProbeOptions
from preflight.tcp import probe_tcp
from preflight.tls import probe_tls
from rules.model import CheckKind, Observation, ProbeStatus
from tests.preflight.conftest import check, probe_once, run
from tests.preflight.servers import TLSServer, closed_port, connect_proxy

HOST = "labacr01.azurecr.io"
Start = Callable[[str, trustme.LeafCert], TLSServer]


def get(port: int, options: ProbeOptions, addresses: list[str]) -> Observation:
    return run(probe_once(probe_http, check(CheckKind.HTTP, HOST, port), options, addresses))


def test_tcp_tls_and_http_share_one_connection(
    tls_server: Start, ca: trustme.CA, ca_bundle: Path
) -> None:
    server = tls_server("127.0.0.3", ca.issue_cert(HOST))
    port = server.port
    chain = [check(kind, HOST, port) for kind in (CheckKind.TCP, CheckKind.TLS, CheckKind.HTTP)]

    async def main() -> list[Observation]:
        context = ProbeContext(ProbeOptions(ca_bundle=ca_bundle, timeout=2), [c.id for c in chain])
        try:
            tcp = await probe_tcp(chain[0], context, ["127.0.0.3"])
            tls = await probe_tls(chain[1], context, ["127.0.0.3"])
            http = await probe_http(chain[2], context, ["127.0.0.3"])
        finally:
            await context.aclose()
        return [tcp, tls, http]

    tcp, tls, http = run(main())
    assert [o.status for o in (tcp, tls, http)] == [ProbeStatus.OK] * 3, http.detail
    assert http.check_id == f"http:{HOST}:{port}"
    assert http.evidence["status_code"] == 404
    assert http.evidence["server_header"] == "aksflight-test"
    assert http.evidence["address"] == "127.0.0.3"
    assert http.evidence["via_proxy"] is None
    assert http.evidence["resolved_by"] == "dns"
    assert server.host_headers == [f"{HOST}:{port}"]
    assert server.connections == 1


def test_http_alone_opens_its_own_connection(
    tls_server: Start, ca: trustme.CA, ca_bundle: Path
) -> None:
    server = tls_server("127.0.0.3", ca.issue_cert(HOST))
    obs = get(server.port, ProbeOptions(ca_bundle=ca_bundle, timeout=2), ["127.0.0.3"])
    assert obs.status is ProbeStatus.OK, obs.detail
    assert obs.evidence["status_code"] == 404
    assert server.connections == 1


def test_http_reports_an_untrusted_certificate(
    tls_server: Start, other_ca: trustme.CA, ca_bundle: Path
) -> None:
    server = tls_server("127.0.0.3", other_ca.issue_cert(HOST))
    obs = get(server.port, ProbeOptions(ca_bundle=ca_bundle, timeout=2), ["127.0.0.3"])
    assert obs.status is ProbeStatus.UNTRUSTED


def test_http_refused() -> None:
    with closed_port("127.0.0.3") as port:
        obs = get(port, ProbeOptions(timeout=2), ["127.0.0.3"])
    assert obs.status is ProbeStatus.REFUSED


def test_through_a_proxy_the_proxy_resolves_the_name(
    tls_server: Start, ca: trustme.CA, ca_bundle: Path
) -> None:
    server = tls_server("127.0.0.3", ca.issue_cert(HOST))
    with connect_proxy({HOST: "127.0.0.3"}) as (proxy, targets):
        options = ProbeOptions(ca_bundle=ca_bundle, timeout=2, proxy=proxy)
        # The DNS answer is not used through a proxy: a wrong one changes nothing.
        obs = get(server.port, options, ["127.0.0.99"])
    assert obs.status is ProbeStatus.OK, obs.detail
    assert obs.evidence["via_proxy"] == proxy
    assert obs.evidence["resolved_by"] == "proxy"
    assert obs.evidence["address"] is None
    assert obs.evidence["status_code"] == 404
    assert targets == [f"{HOST}:{server.port}"]
    assert server.host_headers == [f"{HOST}:{server.port}"]


def test_proxy_refusing_the_tunnel_is_a_proxy_error(ca_bundle: Path) -> None:
    with connect_proxy({}, deny=[HOST]) as (proxy, targets):
        obs = get(443, ProbeOptions(ca_bundle=ca_bundle, timeout=2, proxy=proxy), [])
    assert obs.status is ProbeStatus.PROXY_ERROR
    assert targets == [f"{HOST}:443"]


def test_unreachable_proxy_is_a_proxy_error() -> None:
    with closed_port() as port:
        obs = get(443, ProbeOptions(timeout=2, proxy=f"http://127.0.0.1:{port}"), [])
    assert obs.status is ProbeStatus.PROXY_ERROR
    assert obs.evidence["via_proxy"] == f"http://127.0.0.1:{port}"


def test_https_proxy_from_the_environment_and_no_proxy(
    tls_server: Start, ca: trustme.CA, ca_bundle: Path
) -> None:
    server = tls_server("127.0.0.3", ca.issue_cert(HOST))
    with connect_proxy({HOST: "127.0.0.3"}) as (proxy, targets):
        through = ProbeOptions(ca_bundle=ca_bundle, environ={"HTTPS_PROXY": proxy})
        exempt = ProbeOptions(
            ca_bundle=ca_bundle, environ={"HTTPS_PROXY": proxy, "NO_PROXY": ".azurecr.io"}
        )
        proxied = get(server.port, through, ["127.0.0.3"])
        direct = get(server.port, exempt, ["127.0.0.3"])
    assert proxied.status is ProbeStatus.OK and proxied.evidence["via_proxy"] == proxy
    assert direct.status is ProbeStatus.OK and direct.evidence["via_proxy"] is None
    assert direct.evidence["address"] == "127.0.0.3"
    assert targets == [f"{HOST}:{server.port}"]


@pytest.mark.parametrize(
    ("host", "no_proxy", "bypass"),
    [
        ("labacr01.azurecr.io", "", False),
        ("labacr01.azurecr.io", "*", True),
        ("labacr01.azurecr.io", "azurecr.io", True),
        ("labacr01.azurecr.io", ".azurecr.io", True),
        ("labacr01.azurecr.io", "*.azurecr.io", True),
        ("azurecr.io", ".azurecr.io", True),
        ("notazurecr.io", "azurecr.io", False),
        ("10.1.2.3", "10.0.0.0/8", True),
        ("10.1.2.3", "192.168.0.0/16, localhost", False),
        ("mcr.microsoft.com", "localhost,mcr.microsoft.com:443", True),
    ],
)
def test_no_proxy_rules(host: str, no_proxy: str, bypass: bool) -> None:
    assert bypasses_proxy(host, no_proxy) is bypass


def test_injected_transport_gets_host_header_and_sni() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503, headers={"Server": "mock"})

    options = ProbeOptions(http_transport=httpx.MockTransport(answer))
    obs = get(443, options, ["10.9.8.7"])
    assert obs.status is ProbeStatus.OK
    assert obs.evidence["status_code"] == 503
    assert obs.evidence["server_header"] == "mock"
    assert [str(r.url) for r in seen] == ["https://10.9.8.7/"]
    assert seen[0].headers["Host"] == HOST
    assert seen[0].extensions["sni_hostname"] == HOST


def test_plain_http_probe() -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.3", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        port = server.server_address[1]
        target = check(CheckKind.HTTP, HOST, port)

        async def main() -> Observation:
            context = ProbeContext(ProbeOptions(timeout=2))
            try:
                return await probe_http(target, context, ["127.0.0.3"], scheme="http")
            finally:
                await context.aclose()

        obs = run(main())
    finally:
        server.shutdown()
        server.server_close()
    assert obs.status is ProbeStatus.OK
    assert obs.evidence["status_code"] == 204


def test_parked_connections_are_closed_when_nothing_takes_them(
    tls_server: Start, ca: trustme.CA, ca_bundle: Path
) -> None:
    """A run that ends before the next check uses a parked connection leaves none open."""
    server = tls_server("127.0.0.3", ca.issue_cert(HOST))
    tcp = check(CheckKind.TCP, HOST, server.port)
    tls = check(CheckKind.TLS, HOST, server.port)

    async def main() -> socket.socket | None:
        context = ProbeContext(ProbeOptions(ca_bundle=ca_bundle), [tcp.id, tls.id])
        await probe_tcp(tcp, context, ["127.0.0.3"])
        parked = context.park.take_socket(("tcp", HOST, "127.0.0.3", server.port))
        assert parked is not None
        context.park.park(("tcp", HOST, "127.0.0.3", server.port), parked)
        await context.aclose()
        await asyncio.sleep(0)
        return parked

    parked = run(main())
    assert parked is not None and parked.fileno() == -1
