"""The format-neutral allowlist: requirements turned into allow rules, merged and checked.

Every format renders the same `Allowlist`, so formats cannot disagree about what is allowed.
A requirement becomes one `AllowRule` (one destination, one protocol, one port); two
requirements with the same destination, protocol and port share a rule that names both.
What no egress rule can or should carry (in-cluster traffic, names clients resolve, names
the documentation does not give) becomes a `Skipped` entry with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from reports.allowlist import safety
from reports.allowlist.errors import UnsafeValueError
from rules.model import PHASE_ORDER, Phase, Protocol, Requirement
from rules.names import is_ip_address

DNS_SOURCE = (
    "azure-aks-docs: articles/aks/outbound-rules-control-egress.md "
    "(network rules: UDP 53 to custom DNS servers)"
)
DNS_REQUIREMENT_ID = "network/dns"


class Target(StrEnum):
    """What a rule's destination is."""

    FQDN = "fqdn"
    WILDCARD = "wildcard"  # `*.suffix`: any subdomain at any depth, not the apex
    ADDRESS = "address"
    SERVICE_TAG = "service-tag"
    FQDN_TAG = "fqdn-tag"


@dataclass(frozen=True, slots=True)
class Destination:
    kind: Target
    value: str

    @property
    def suffix(self) -> str:
        """For a wildcard, the name below the `*.`; otherwise the value itself."""
        return self.value[2:] if self.kind is Target.WILDCARD else self.value

    @property
    def is_name(self) -> bool:
        return self.kind in (Target.FQDN, Target.WILDCARD)


@dataclass(frozen=True, slots=True)
class AllowRule:
    """One allow rule: traffic from the sources to one destination on one protocol and port."""

    name: str
    destination: Destination
    protocol: Protocol
    port: int
    requirement_ids: tuple[str, ...]
    phases: tuple[Phase, ...]
    documentation: tuple[str, ...]
    purposes: tuple[str, ...]
    severity: str = "fail"

    @property
    def phase(self) -> Phase:
        return self.phases[0]

    @property
    def is_web(self) -> bool:
        """HTTP or HTTPS to a name: what Azure Firewall application rules (and proxies) match."""
        return self.protocol in (Protocol.HTTP, Protocol.HTTPS) and self.destination.kind in (
            Target.FQDN,
            Target.WILDCARD,
            Target.FQDN_TAG,
        )

    @property
    def transport(self) -> str:
        """The IP protocol on the wire: UDP for UDP, TCP for everything else."""
        return "udp" if self.protocol is Protocol.UDP else "tcp"

    def description(self) -> str:
        """Names the requirements, the phases and the documentation; inert in every format."""
        phases = ", ".join(p.value for p in self.phases)
        text = (
            f"aksflight {' '.join(self.requirement_ids)} | phase {phases} | "
            f"source: {' + '.join(self.documentation)}"
        )
        return safety.text(text, f"{self.name}: description")

    def short_comment(self) -> str:
        """At most 120 characters (nftables caps rule comments at 128 bytes)."""
        text = f"{' '.join(self.requirement_ids)} [{self.phase.value}]"
        if len(text) > 120:
            text = text[:117] + "..."
        return safety.text(text, f"{self.name}: comment")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A requirement no egress rule carries, and why; `warn` marks what the admin must act on."""

    requirement_id: str
    host: str
    reason: str
    warn: bool = False


@dataclass(frozen=True, slots=True)
class Allowlist:
    rules: tuple[AllowRule, ...]
    source_cidrs: tuple[str, ...]
    skipped: tuple[Skipped, ...]
    phases: tuple[Phase, ...]
    title: str
    notes: tuple[str, ...] = ()

    @property
    def warnings(self) -> tuple[str, ...]:
        out = [f"{s.requirement_id}: {s.reason}" for s in self.skipped if s.warn]
        return (*out, *self.notes)

    def with_rules(self, rules: Iterable[AllowRule]) -> Allowlist:
        return replace(self, rules=tuple(rules))


def _destination(req: Requirement) -> Destination:
    where = f"requirement {req.id}"
    if req.fqdn_tag is not None:
        return Destination(Target.FQDN_TAG, safety.tag(req.fqdn_tag, where))
    if req.service_tag is not None:
        return Destination(Target.SERVICE_TAG, safety.tag(req.service_tag, where))
    if is_ip_address(req.host):
        return Destination(Target.ADDRESS, safety.address(req.host, where))
    if req.host.startswith("*."):
        return Destination(Target.WILDCARD, safety.host(req.host, where, wildcard=True))
    return Destination(Target.FQDN, safety.host(req.host, where))


def _skip_reason(req: Requirement, fqdn_tag: bool) -> Skipped | None:
    if req.kind is not None:
        return Skipped(
            req.id, req.host, "in-cluster traffic (Kubernetes API or pods); no egress rule"
        )
    if req.resolve_only:
        return Skipped(req.id, req.host, "resolved by clients; the nodes need no egress to it")
    if "<" in req.host:
        return Skipped(
            req.id, req.host, f"left out: {req.note or 'not documented for this cloud'}", True
        )
    if req.fqdn_tag is not None and not fqdn_tag:
        return Skipped(
            req.id, req.host, "optional FQDN tag left out (allowlist --fqdn-tag adds it)"
        )
    return None


def _rule_for(req: Requirement, destination: Destination, phases: tuple[Phase, ...]) -> AllowRule:
    if req.port is None:
        raise UnsafeValueError(f"requirement {req.id}", None, "a host requirement needs a port")
    return AllowRule(
        name=safety.rule_name(req.id),
        destination=destination,
        protocol=req.protocol,
        port=safety.port(req.port, f"requirement {req.id}"),
        requirement_ids=(req.id,),
        phases=phases,
        documentation=(safety.text(req.source, f"requirement {req.id}: source"),),
        purposes=(safety.text(req.purpose, f"requirement {req.id}: purpose"),),
        severity=req.severity,
    )


def merge(first: AllowRule, other: AllowRule) -> AllowRule:
    """`first` extended to carry `other`'s requirements (the destination stays `first`'s)."""

    def union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*a, *b)))

    phases = tuple(p for p in PHASE_ORDER if p in first.phases or p in other.phases)
    return replace(
        first,
        requirement_ids=union(first.requirement_ids, other.requirement_ids),
        phases=phases,
        documentation=union(first.documentation, other.documentation),
        purposes=union(first.purposes, other.purposes),
        severity="fail" if "fail" in (first.severity, other.severity) else first.severity,
    )


def _unique_names(rules: list[AllowRule]) -> list[AllowRule]:
    seen: dict[str, int] = {}
    out = []
    for rule in rules:
        count = seen.get(rule.name, 0)
        seen[rule.name] = count + 1
        renamed = f"{rule.name[:75]}-{count + 1}"
        out.append(replace(rule, name=safety.name(renamed, "rule name")) if count else rule)
    return out


def _dns_rules(dns_servers: Sequence[str], phases: tuple[Phase, ...]) -> list[AllowRule]:
    return [
        AllowRule(
            name=safety.rule_name(f"network-dns-{server}"),
            destination=Destination(Target.ADDRESS, safety.address(server, "network.nameservers")),
            protocol=Protocol.UDP,
            port=53,
            requirement_ids=(DNS_REQUIREMENT_ID,),
            phases=phases,
            documentation=(DNS_SOURCE,),
            purposes=("custom DNS servers (network.nameservers)",),
        )
        for server in dns_servers
    ]


def build_allowlist(
    requirements: Iterable[Requirement],
    source_cidrs: Sequence[str],
    *,
    phases: Sequence[Phase] | None = None,
    dns_servers: Sequence[str] = (),
    fqdn_tag: bool = False,
    title: str = "aksflight allowlist",
) -> Allowlist:
    """The allow rules `requirements` need, from `source_cidrs`, restricted to `phases`."""
    selected = tuple(p for p in PHASE_ORDER if phases is None or p in phases)
    sources = tuple(dict.fromkeys(safety.cidr(c, "source CIDR") for c in source_cidrs))
    by_key: dict[tuple[Destination, Protocol, int], AllowRule] = {}
    skipped: list[Skipped] = []
    notes: list[str] = []
    every_phase = len(selected) == len(PHASE_ORDER)
    for req in requirements:
        phases = req.phases if every_phase else tuple(p for p in req.phases if p in selected)
        if not phases:
            continue
        skip = _skip_reason(req, fqdn_tag)
        if skip is not None:
            skipped.append(skip)
            continue
        destination = _destination(req)
        rule = _rule_for(req, destination, phases)
        if req.missing_field and destination.kind is Target.WILDCARD:
            notes.append(
                f"{req.id}: {req.host} is a wildcard because {req.missing_field} is not set; "
                "set it to narrow the rule to your own name"
            )
        if destination.kind is Target.FQDN_TAG:
            notes.append(f"{req.id}: {req.note or 'an FQDN tag'}")
        key = (destination, rule.protocol, rule.port)
        by_key[key] = merge(by_key[key], rule) if key in by_key else rule
    rules = list(by_key.values())
    if dns_servers and selected:
        rules.extend(_dns_rules(dns_servers, selected))
    return Allowlist(
        rules=tuple(_unique_names(rules)),
        source_cidrs=sources,
        skipped=tuple(skipped),
        phases=selected,
        title=safety.text(title, "title"),
        notes=tuple(notes),
    )
