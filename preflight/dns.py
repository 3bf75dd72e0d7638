"""The DNS probe: A and AAAA for one name, the CNAME chain, who answered, and what kind of
address came back (a private endpoint answers with a private one)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.resolver

from preflight._net import describe, host_port
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


async def probe_dns(
    check: Check, context: ProbeContext, addresses: Sequence[str] = ()
) -> Observation:
    """Resolve `check.target` (A, then AAAA) with the run's resolver."""
    started = context.clock()
    evidence: dict[str, Any] = {"query": check.target}
    try:
        resolver = context.resolver
    except dns.exception.DNSException as exc:
        return Observation(
            check.id, ProbeStatus.ERROR, 0.0, f"no resolver: {describe(exc)}", evidence
        )
    evidence["nameservers"] = _nameservers(resolver)
    evidence["resolver"] = (
        "injected"
        if context.options.resolver_factory is not None
        else "given"
        if context.options.nameservers
        else "system"
    )
    qname = dns.name.from_text(check.target)
    results = await asyncio.gather(*(_query(resolver, qname, t) for t in _RECORD_TYPES))
    duration_ms = (context.clock() - started) * 1000

    found: list[str] = []
    server = None
    chain: list[str] = []
    failures: dict[str, ProbeStatus] = {}
    errors: dict[str, Exception] = {}
    for rdtype, result in zip(_RECORD_TYPES, results, strict=True):
        if isinstance(result, Exception):
            failures[rdtype] = _status_of(result)
            errors[rdtype] = result
            continue
        found.extend(rdata.to_text() for rdata in result)
        server = server or _server(result)
        chain = chain or _chain(qname, result.chaining_result)
    if not chain:
        no_answer = next((e for e in errors.values() if isinstance(e, dns.resolver.NoAnswer)), None)
        if no_answer is not None:
            chain = _chain(qname, _chaining_of(no_answer))
    evidence.update(
        server=server,
        addresses=found,
        address_classes={a: classify_address(a) for a in found},
        cname_chain=chain,
        privatelink=any(".privatelink." in f".{name}." for name in chain),
        record_errors={t: s.value for t, s in failures.items()},
    )
    if found:
        return Observation(check.id, ProbeStatus.OK, duration_ms, "", evidence)
    status = min(failures.values(), key=_PRECEDENCE.index)
    if (
        server is None
        and len(evidence["nameservers"]) == 1
        and status is not ProbeStatus.DNS_TIMEOUT
    ):
        # dnspython does not say who answered a failure; with one server it can only be it.
        evidence["server"] = evidence["nameservers"][0]
    detail = "; ".join(f"{rdtype}: {describe(exc)}" for rdtype, exc in errors.items())
    return Observation(check.id, status, duration_ms, detail, evidence)
