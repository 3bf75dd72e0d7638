"""The DNS probe: A and AAAA for one name, the CNAME chain, who answered, and what kind of
address came back (a private endpoint answers with a private one)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.resolver

from preflight._dnswire import TYPE_A, TYPE_AAAA, name_text
from preflight._net import describe, host_port
from preflight._stub import StubResolver, Verdict
from preflight.context import ProbeContext
from rules.model import Check, Observation, ProbeStatus
from rules.names import classify_address

_RECORD_TYPES = ("A", "AAAA")
# When A and AAAA fail differently, the more telling status wins.
_PRECEDENCE = (
    ProbeStatus.NXDOMAIN,
    ProbeStatus.SERVFAIL,
    ProbeStatus.DNS_TIMEOUT,
    ProbeStatus.NO_ANSWER,
    ProbeStatus.ERROR,
)


def _status_of(exc: Exception) -> ProbeStatus:
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return ProbeStatus.NXDOMAIN
    if isinstance(exc, dns.resolver.NoAnswer):
        return ProbeStatus.NO_ANSWER
    if isinstance(exc, dns.resolver.NoNameservers):
        return ProbeStatus.SERVFAIL
    if isinstance(exc, dns.resolver.LifetimeTimeout | dns.exception.Timeout):
        return ProbeStatus.DNS_TIMEOUT
    return ProbeStatus.ERROR


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True)


def _chain(qname: dns.name.Name, chaining: dns.message.ChainingResult | None) -> list[str]:
    """Query name, then each CNAME target in order; empty when the name is no alias."""
    if chaining is None or not chaining.cnames:
        return []
    return [_text(qname), *(_text(rrset[0].target) for rrset in chaining.cnames)]


def _chaining_of(exc: dns.resolver.NoAnswer) -> dns.message.ChainingResult | None:
    response = exc.kwargs.get("response")
    if not isinstance(response, dns.message.QueryMessage):
        return None
    try:
        return response.resolve_chaining()
    except dns.exception.DNSException:
        return None


def _server(answer: dns.resolver.Answer) -> str | None:
    if answer.nameserver is None:
        return None
    port = answer.port or 53
    return answer.nameserver if port == 53 else host_port(answer.nameserver, port)


def _nameservers(resolver: dns.asyncresolver.Resolver) -> list[str]:
    out = []
    for server in resolver.nameservers:
        if isinstance(server, str):
            out.append(server)
        else:
            port = getattr(server, "port", 53)
            address = str(getattr(server, "address", server))
            out.append(address if port == 53 else host_port(address, port))
    return out


async def _query(
    resolver: dns.asyncresolver.Resolver, qname: dns.name.Name, rdtype: str
) -> dns.resolver.Answer | Exception:
    try:
        return await resolver.resolve(qname, rdtype, search=False)
    except dns.exception.DNSException as exc:
        return exc


@dataclass(frozen=True, slots=True)
class _Lookup:
    """How one record type went, whichever client asked."""

    rdtype: str
    status: ProbeStatus | None  # None: it answered with addresses
    addresses: Sequence[str] = ()
    server: str | None = None
    chain: Sequence[str] = ()
    detail: str = ""


_STUB_STATUS = {
    Verdict.ANSWER: None,
    Verdict.NO_ANSWER: ProbeStatus.NO_ANSWER,
    Verdict.NXDOMAIN: ProbeStatus.NXDOMAIN,
    Verdict.FAILED: ProbeStatus.SERVFAIL,
    Verdict.TIMEOUT: ProbeStatus.DNS_TIMEOUT,
    Verdict.ERROR: ProbeStatus.ERROR,
}


async def _ask_stub(stub: StubResolver, host: str, timeout: float) -> list[_Lookup]:
    outcomes = await stub.lookup(host, (TYPE_A, TYPE_AAAA), timeout)
    lookups = []
    for rdtype, outcome in zip(_RECORD_TYPES, outcomes, strict=True):
        chain = [host, *(name_text(n) for n in outcome.cnames)] if outcome.cnames else []
        lookups.append(
            _Lookup(
                rdtype,
                _STUB_STATUS[outcome.verdict],
                outcome.addresses,
                outcome.server,
                chain,
                outcome.detail,
            )
        )
    return lookups


async def _ask_resolver(resolver: dns.asyncresolver.Resolver, host: str) -> list[_Lookup]:
    qname = dns.name.from_text(host)
    results = await asyncio.gather(*(_query(resolver, qname, t) for t in _RECORD_TYPES))
    lookups = []
    for rdtype, result in zip(_RECORD_TYPES, results, strict=True):
        if isinstance(result, Exception):
            chain: list[str] = []
            if isinstance(result, dns.resolver.NoAnswer):
                chain = _chain(qname, _chaining_of(result))
            lookups.append(
                _Lookup(rdtype, _status_of(result), chain=chain, detail=describe(result))
            )
            continue
        addresses = [rdata.to_text() for rdata in result]
        lookups.append(
            _Lookup(rdtype, None, addresses, _server(result), _chain(qname, result.chaining_result))
        )
    return lookups


async def probe_dns(
    check: Check, context: ProbeContext, addresses: Sequence[str] = ()
) -> Observation:
    """Resolve `check.target` (A and AAAA together) at the given nameservers, or with the
    run's resolver (the system's, or an injected one)."""
    started = context.clock()
    evidence: dict[str, Any] = {"query": check.target}
    stub = context.stub_resolver
    if stub is not None:
        evidence["nameservers"] = [str(n) for n in stub.nameservers]
        evidence["resolver"] = "given"
        lookups = await _ask_stub(stub, check.target, context.timeout)
    else:
        try:
            resolver = context.resolver
        except dns.exception.DNSException as exc:
            return Observation(
                check.id, ProbeStatus.ERROR, 0.0, f"no resolver: {describe(exc)}", evidence
            )
        evidence["nameservers"] = _nameservers(resolver)
        evidence["resolver"] = (
            "injected" if context.options.resolver_factory is not None else "system"
        )
        lookups = await _ask_resolver(resolver, check.target)
    duration_ms = (context.clock() - started) * 1000
    return _observation(check, evidence, lookups, duration_ms)


def _observation(
    check: Check, evidence: dict[str, Any], lookups: Sequence[_Lookup], duration_ms: float
) -> Observation:
    found = [a for lookup in lookups for a in lookup.addresses]
    answered = [lookup for lookup in lookups if lookup.status is None]
    failed = [lookup for lookup in lookups if lookup.status is not None]
    server = next((lookup.server for lookup in (*answered, *failed) if lookup.server), None)
    # The chain of the first type that answered, else of one that found no such record.
    chain = next((list(lookup.chain) for lookup in (*answered, *failed) if lookup.chain), [])
    evidence.update(
        server=server,
        addresses=found,
        address_classes={a: classify_address(a) for a in found},
        cname_chain=chain,
        privatelink=any(".privatelink." in f".{name}." for name in chain),
        record_errors={lookup.rdtype: lookup.status.value for lookup in failed if lookup.status},
    )
    if found:
        return Observation(check.id, ProbeStatus.OK, duration_ms, "", evidence)
    status = min((lookup.status for lookup in failed if lookup.status), key=_PRECEDENCE.index)
    if (
        server is None
        and len(evidence["nameservers"]) == 1
        and status is not ProbeStatus.DNS_TIMEOUT
    ):
        # Nobody said who answered a failure; with one server it can only be it.
        evidence["server"] = evidence["nameservers"][0]
    detail = "; ".join(f"{lookup.rdtype}: {lookup.detail}" for lookup in failed)
    return Observation(check.id, status, duration_ms, detail, evidence)
