"""The DNS probe against a real dnsmasq on loopback (and a server that never answers)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from preflight.dns import probe_dns
from preflight.options import ProbeOptions
from rules.model import CheckKind, ProbeStatus
from tests.preflight.conftest import check, probe_once, run
from tests.preflight.servers import Dnsmasq, silent_nameserver


@pytest.fixture
def zone(dnsmasq: Callable[..., Dnsmasq]) -> Dnsmasq:
    return dnsmasq(
        "--address=/mcr.microsoft.com/10.20.0.4",
        "--address=/blocked.example.com/",
        "--host-record=dual.example.com,203.0.113.7,2001:db8::7",
        "--cname=labacr01.azurecr.io,labacr01.privatelink.azurecr.io",
        "--host-record=labacr01.privatelink.azurecr.io,10.1.2.3",
        "--cname=public.example.com,edge.example.net",
        "--host-record=edge.example.net,198.51.100.10",
        "--local=/nodata.example.com/",
        "--txt-record=nodata.example.com,only text here",
    )


def resolve(host: str, nameserver: str, timeout: float = 2.0) -> object:
    options = ProbeOptions(nameservers=[nameserver], timeout=timeout)
    return run(probe_once(probe_dns, check(CheckKind.DNS, host), options))


def test_answer_from_the_given_nameserver_and_port(zone: Dnsmasq) -> None:
    obs = resolve("mcr.microsoft.com", zone.nameserver)
    assert obs.check_id == "dns:mcr.microsoft.com"
    assert obs.status is ProbeStatus.OK
    assert obs.evidence["server"] == zone.nameserver
    assert obs.evidence["addresses"] == ["10.20.0.4"]
    assert obs.evidence["address_classes"] == {"10.20.0.4": "private"}
    assert obs.evidence["cname_chain"] == []
    assert obs.evidence["privatelink"] is False
    assert obs.duration_ms > 0


def test_a_then_aaaa(zone: Dnsmasq) -> None:
    obs = resolve("dual.example.com", zone.nameserver)
    assert obs.status is ProbeStatus.OK
    assert obs.evidence["addresses"] == ["203.0.113.7", "2001:db8::7"]
    assert obs.evidence["address_classes"] == {"203.0.113.7": "public", "2001:db8::7": "public"}


def test_privatelink_chain(zone: Dnsmasq) -> None:
    obs = resolve("labacr01.azurecr.io", zone.nameserver)
    assert obs.check_id == "dns:labacr01.azurecr.io"
    assert obs.status is ProbeStatus.OK
    assert obs.evidence["cname_chain"] == ["labacr01.azurecr.io", "labacr01.privatelink.azurecr.io"]
    assert obs.evidence["privatelink"] is True
    assert obs.evidence["address_classes"] == {"10.1.2.3": "private"}


def test_cname_chain_without_privatelink(zone: Dnsmasq) -> None:
    obs = resolve("public.example.com", zone.nameserver)
    assert obs.evidence["cname_chain"] == ["public.example.com", "edge.example.net"]
    assert obs.evidence["privatelink"] is False
    assert obs.evidence["addresses"] == ["198.51.100.10"]


def test_nxdomain(zone: Dnsmasq) -> None:
    obs = resolve("blocked.example.com", zone.nameserver)
    assert obs.check_id == "dns:blocked.example.com"
    assert obs.status is ProbeStatus.NXDOMAIN
    assert obs.evidence["addresses"] == []
    assert obs.evidence["server"] == zone.nameserver
    assert "NXDOMAIN" in obs.detail


def test_no_answer_for_a_and_aaaa(zone: Dnsmasq) -> None:
    obs = resolve("nodata.example.com", zone.nameserver)
    assert obs.status is ProbeStatus.NO_ANSWER
    assert obs.evidence["record_errors"] == {"A": "no-answer", "AAAA": "no-answer"}


def test_servfail_when_the_server_refuses(zone: Dnsmasq) -> None:
    # dnsmasq has no upstream for names it was not told: it refuses, as a broken
    # forwarder does; dnspython gives up on every server (NoNameservers).
    obs = resolve("unknown.example.org", zone.nameserver)
    assert obs.status is ProbeStatus.SERVFAIL
    assert obs.evidence["record_errors"] == {"A": "servfail", "AAAA": "servfail"}


def test_dns_timeout() -> None:
    with silent_nameserver() as nameserver:
        obs = resolve("mcr.microsoft.com", nameserver, timeout=0.5)
    assert obs.check_id == "dns:mcr.microsoft.com"
    assert obs.status is ProbeStatus.DNS_TIMEOUT
    assert obs.evidence["server"] is None
    assert obs.evidence["nameservers"] == [nameserver]
    assert 450 <= obs.duration_ms < 1500


def test_resolver_factory_seam(zone: Dnsmasq) -> None:
    """A resolver from the factory is used instead of the nameservers list."""
    import dns.asyncresolver
    import dns.nameserver

    made = []

    def factory(options: ProbeOptions) -> dns.asyncresolver.Resolver:
        resolver = dns.asyncresolver.Resolver(configure=False)
        address, port = zone.nameserver.split(":")
        resolver.nameservers = [dns.nameserver.Do53Nameserver(address, int(port))]
        made.append(resolver)
        return resolver

    options = ProbeOptions(timeout=2, resolver_factory=factory)
    obs = run(probe_once(probe_dns, check(CheckKind.DNS, "mcr.microsoft.com"), options))
    assert obs.status is ProbeStatus.OK
    assert len(made) == 1
    assert obs.evidence["resolver"] == "injected"
