"""The TLS probe against real TLS servers with trustme certificates on loopback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import trustme

from preflight.context import ProbeContext
from preflight.options import ProbeOptions
from preflight.tls import probe_tls
from rules.model import CheckKind, Observation, ProbeStatus
from tests.preflight.conftest import check, probe_once, run
from tests.preflight.servers import TLSServer, closed_port, stalled_listener

HOST = "mcr.microsoft.com"
Start = Callable[[str, trustme.LeafCert], TLSServer]


def handshake(port: int, options: ProbeOptions, address: str = "127.0.0.2") -> Observation:
    return run(probe_once(probe_tls, check(CheckKind.TLS, HOST, port), options, [address]))


def test_verified(tls_server: Start, ca: trustme.CA, ca_bundle: Path) -> None:
    server = tls_server("127.0.0.2", ca.issue_cert(HOST))
    obs = handshake(server.port, ProbeOptions(ca_bundle=ca_bundle, timeout=2))
    assert obs.check_id == f"tls:{HOST}:{server.port}"
    assert obs.status is ProbeStatus.OK, obs.detail
    assert obs.evidence["address"] == "127.0.0.2"
    assert "O=trustme" in obs.evidence["issuer"]
    assert obs.evidence["subject"].startswith("OU=Testing cert")
    assert obs.evidence["sans"] == [HOST]
    assert obs.evidence["not_after"].startswith("3000-01-01")
    assert obs.evidence["tls_version"] in ("TLSv1.2", "TLSv1.3")


def test_another_ca_is_untrusted_and_its_issuer_recorded(
    tls_server: Start, other_ca: trustme.CA, ca_bundle: Path
) -> None:
    """What a TLS-inspecting firewall looks like: a valid-looking chain from a CA we
    do not trust, and the issuer says whose."""
    server = tls_server("127.0.0.2", other_ca.issue_cert(HOST))
    obs = handshake(server.port, ProbeOptions(ca_bundle=ca_bundle, timeout=2))
    assert obs.check_id == f"tls:{HOST}:{server.port}"
    assert obs.status is ProbeStatus.UNTRUSTED
    assert "O=Inspecting firewall" in obs.evidence["issuer"]
    assert obs.evidence["sans"] == [HOST]
    assert obs.evidence["verify_message"] == "unable to get local issuer certificate"


def test_system_trust_store_does_not_trust_a_test_ca(tls_server: Start, ca: trustme.CA) -> None:
    server = tls_server("127.0.0.2", ca.issue_cert(HOST))
    obs = handshake(server.port, ProbeOptions(timeout=2))
    assert obs.status is ProbeStatus.UNTRUSTED


def test_certificate_for_another_name(tls_server: Start, ca: trustme.CA, ca_bundle: Path) -> None:
    server = tls_server("127.0.0.2", ca.issue_cert("other.example.com"))
    obs = handshake(server.port, ProbeOptions(ca_bundle=ca_bundle, timeout=2))
    assert obs.check_id == f"tls:{HOST}:{server.port}"
    assert obs.status is ProbeStatus.HOSTNAME_MISMATCH
    assert obs.evidence["sans"] == ["other.example.com"]
    assert "O=trustme" in obs.evidence["issuer"]


def test_stalled_handshake_times_out(ca_bundle: Path) -> None:
    with stalled_listener("127.0.0.2") as port:
        obs = handshake(port, ProbeOptions(ca_bundle=ca_bundle, timeout=0.5))
    assert obs.status is ProbeStatus.TIMEOUT
    assert 450 <= obs.duration_ms < 1500


def test_refused(ca_bundle: Path) -> None:
    with closed_port("127.0.0.2") as port:
        obs = handshake(port, ProbeOptions(ca_bundle=ca_bundle, timeout=2))
    assert obs.status is ProbeStatus.REFUSED
    assert obs.evidence["issuer"] is None


def test_not_tls_at_all(ca_bundle: Path) -> None:
    """A server that answers in clear text: a TLS error, not a verification failure."""
    import socket
    import threading

    with socket.create_server(("127.0.0.2", 0)) as server:

        def answer() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

        threading.Thread(target=answer, daemon=True).start()
        obs = handshake(server.getsockname()[1], ProbeOptions(ca_bundle=ca_bundle, timeout=2))
    assert obs.status is ProbeStatus.TLS_ERROR


def test_one_certificate_is_parsed_once_per_run(
    tls_server: Start, ca: trustme.CA, ca_bundle: Path
) -> None:
    """Two endpoints behind one certificate share its parsed evidence (not its lists);
    a third with its own certificate gets its own."""
    shared = ca.issue_cert(HOST, "other.example.com")
    first, second = tls_server("127.0.0.2", shared), tls_server("127.0.0.3", shared)
    third = tls_server("127.0.0.4", ca.issue_cert("third.example.com", HOST))
    targets = [(first, "127.0.0.2"), (second, "127.0.0.3"), (third, "127.0.0.4")]

    async def main() -> tuple[list[Observation], int]:
        context = ProbeContext(ProbeOptions(ca_bundle=ca_bundle, timeout=2))
        try:
            found = [
                await probe_tls(check(CheckKind.TLS, HOST, server.port), context, [address])
                for server, address in targets
            ]
            return found, len(context.certificates)
        finally:
            await context.aclose()

    (a, b, c), parsed = run(main())
    assert [o.status for o in (a, b, c)] == [ProbeStatus.OK] * 3
    assert parsed == 2
    assert a.evidence["sans"] == b.evidence["sans"] == [HOST, "other.example.com"]
    assert a.evidence["sans"] is not b.evidence["sans"]
    assert c.evidence["sans"] == ["third.example.com", HOST]
    assert a.evidence["address"] == "127.0.0.2" and b.evidence["address"] == "127.0.0.3"
