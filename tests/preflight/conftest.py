"""Fixtures for the probe tests: real servers on loopback, stopped after each test."""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import pytest
import trustme

from preflight import eventloop
from preflight.context import ProbeContext
from preflight.options import ProbeOptions
from rules.model import Check, CheckKind, Phase, Protocol, Requirement
from rules.plan import check_id
from tests.preflight.servers import Dnsmasq, TLSServer

T = TypeVar("T")


def run(awaitable: Awaitable[T]) -> T:
    """On the loop `aksflight check` uses (uvloop where installed)."""

    async def main() -> T:
        return await awaitable

    return eventloop.run(main())


def check(kind: CheckKind, host: str, port: int | None = None) -> Check:
    return Check(
        id=check_id(kind, host, port), kind=kind, phase=Phase.ROUTER_INSTALL, target=host, port=port
    )


def requirement(
    host: str, port: int, protocol: Protocol = Protocol.HTTPS, phase: Phase = Phase.ROUTER_INSTALL
) -> Requirement:
    return Requirement(
        id=f"test/{host}-{port}",
        catalogue="test",
        host=host,
        port=port,
        protocol=protocol,
        phases=(phase,),
        purpose=f"reach {host}",
        source="test",
    )


async def probe_once(
    probe: Callable[[Check, ProbeContext, Sequence[str]], Awaitable[T]],
    target: Check,
    options: ProbeOptions,
    addresses: Sequence[str] = (),
    planned: Sequence[str] = (),
) -> T:
    context = ProbeContext(options, planned)
    try:
        return await probe(target, context, addresses)
    finally:
        await context.aclose()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def other_ca() -> trustme.CA:
    return trustme.CA(organization_name="Inspecting firewall")


@pytest.fixture
def ca_bundle(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def dnsmasq(tmp_path: Path) -> Iterator[Callable[..., Dnsmasq]]:
    """Starts dnsmasq with the given options on 127.0.0.1 and an ephemeral port."""
    if shutil.which("dnsmasq") is None and not Path("/usr/sbin/dnsmasq").exists():
        pytest.skip("dnsmasq is not installed (Debian package dnsmasq-base)")
    started: list[Dnsmasq] = []

    def start(*args: str) -> Dnsmasq:
        server = Dnsmasq(args, tmp_path).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def tls_server() -> Iterator[Callable[[str, trustme.LeafCert], TLSServer]]:
    started: list[TLSServer] = []

    def start(address: str, cert: trustme.LeafCert) -> TLSServer:
        server = TLSServer(address, cert).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
