"""Evaluating a policy against the requirements, the way Azure Firewall decides a flow.

For each requirement the flow is: from the node subnets, to its destination, on its protocol
and port. Rules are tried in the policy's order (network before application, priorities,
terminating); a rule decides for the part of the node subnets its sources cover, and the
rest goes on. Whatever no rule decides is denied by the firewall's default.

An allow rule that matches only some of a wildcard requirement's names (`x.data.mcr...` for
`*.data.mcr...`) does not allow it; a deny rule that matches some of them denies those.
A network rule to a service tag or an address range might carry a name's traffic, but the
audit cannot know the name's addresses, so it only notes such rules.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from reports.allowlist import Allowlist, AllowRule, Skipped, Target
from reports.audit.errors import AuditError
from reports.audit.matching import (
    AddressSet,
    Overlap,
    label_suffixes,
    parse_address,
    pattern_overlap,
)
from reports.audit.policy import Layer, Policy, PolicyRule
from rules.model import Phase, Protocol

_ALL_V4 = AddressSet(((4, 0, 2**32 - 1),))


class Verdict(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    NOT_COVERED = "not-covered"


@dataclass(frozen=True, slots=True)
class Decision:
    """A rule that decided the flow for `sources` (a part of the node subnets)."""

    rule: str
    action: str
    sources: tuple[str, ...]
    some_names: bool = False


@dataclass(frozen=True, slots=True)
class RequirementVerdict:
    requirement_id: str
    destination: str
    protocol: Protocol
    port: int
    phases: tuple[Phase, ...]
    severity: str
    verdict: Verdict
    decisions: tuple[Decision, ...]
    uncovered: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def detail(self) -> str:
        """One line: which rule allowed or denied it, and from where."""
        denies = [d for d in self.decisions if d.action == "Deny"]
        allows = [d for d in self.decisions if d.action == "Allow"]
        if self.verdict is Verdict.DENIED:
            parts = [
                f"denied by {d.rule}"
                + (" (some names)" if d.some_names else "")
                + f" from {', '.join(d.sources)}"
                for d in denies
            ]
        elif self.verdict is Verdict.NOT_COVERED:
            parts = [f"no rule allows it from {', '.join(self.uncovered)}"]
            parts += [f"allowed by {d.rule} only from {', '.join(d.sources)}" for d in allows]
        else:
            parts = [f"allowed by {d.rule}" for d in allows]
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class BroadRule:
    rule: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuditResult:
    verdicts: tuple[RequirementVerdict, ...]
    broad_rules: tuple[BroadRule, ...]
    skipped: tuple[Skipped, ...]
    groups: tuple[str, ...]
    rule_count: int
    sources: tuple[str, ...]
    policy_notes: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        """A required (severity fail) host is not allowed."""
        return any(v.verdict is not Verdict.ALLOWED and v.severity == "fail" for v in self.verdicts)


class _Index:
    """Which rules could match a destination, so each requirement tries only a few rules."""

    def __init__(self, rules: Sequence[PolicyRule]) -> None:
        self.exact: dict[str, list[int]] = defaultdict(list)
        self.exact_under: dict[str, list[int]] = defaultdict(list)
        self.wild: dict[str, list[int]] = defaultdict(list)
        self.wild_under: dict[str, list[int]] = defaultdict(list)
        self.tails: dict[str, list[int]] = defaultdict(list)
        self.tags: dict[str, list[int]] = defaultdict(list)
        self.any_name: list[int] = []
        self.addresses: list[int] = []  # network rules to address ranges
        self.everywhere: list[int] = []  # network rules to every IPv4 address
        self._rules = rules
        self._possible: dict[tuple[str, int], list[int]] = {}
        # Allow rules to address ranges or tags: what might carry a name's traffic.
        self._maybe = [
            i
            for i, r in enumerate(rules)
            if r.layer is Layer.NETWORK
            and r.action == "Allow"
            and (r.destinations or r.destination_tags)
        ]
        for i, rule in enumerate(rules):
            names = [*rule.targets, *rule.destination_fqdns]
            for name in names:
                if name == "*":
                    self.any_name.append(i)
                elif name.startswith("*."):
                    self.wild[name[2:]].append(i)
                    for suffix in label_suffixes(name[2:])[1:]:
                        self.wild_under[suffix].append(i)
                elif name.startswith("*"):
                    self.tails[name[1:]].append(i)
                else:
                    self.exact[name].append(i)
                    for suffix in label_suffixes(name)[1:]:
                        self.exact_under[suffix].append(i)
            for tag in (*rule.destination_tags, *rule.fqdn_tags):
                self.tags[tag].append(i)
            if rule.destinations:
                self.addresses.append(i)
                if not (_ALL_V4 - rule.destinations):
                    self.everywhere.append(i)

    def candidates(self, rule: AllowRule) -> list[int]:
        kind = rule.destination.kind
        value = rule.destination.value.lower()
        found: list[int] = list(self.everywhere)
        if kind is Target.ADDRESS:
            found += self.addresses
        elif kind is Target.FQDN:
            found += self.exact.get(value, [])
            for suffix in label_suffixes(value)[1:]:
                found += self.wild.get(suffix, [])
            found += self._tails(value)
            found += self.any_name
        elif kind is Target.WILDCARD:
            suffix = value[2:]
            for ancestor in label_suffixes(suffix):
                found += self.wild.get(ancestor, [])
            found += self.wild_under.get(suffix, []) + self.exact_under.get(suffix, [])
            found += self._tails("." + suffix)
            found += self.any_name
        elif kind in (Target.SERVICE_TAG, Target.FQDN_TAG):
            found += self.tags.get(value, []) + self.tags.get(value.split(".")[0], [])
        return sorted(set(found))

    def possible(self, allow: AllowRule) -> list[str]:
        """Allow rules to address ranges or tags on the same protocol and port (at most 3)."""
        key = (allow.transport.upper(), allow.port)
        if key not in self._possible:
            self._possible[key] = [
                i
                for i in self._maybe
                if {key[0], "ANY"} & self._rules[i].ip_protocols
                and any(low <= allow.port <= high for low, high in self._rules[i].ports)
            ]
        return [self._rules[i].ref for i in self._possible[key][:3]]

    def _tails(self, name: str) -> list[int]:
        if not self.tails:
            return []
        return [i for start in range(len(name)) for i in self.tails.get(name[start:], [])]


def _network_overlap(rule: PolicyRule, allow: AllowRule) -> Overlap:
    if not ({allow.transport.upper(), "ANY"} & rule.ip_protocols):
        return Overlap.NONE
    if not any(low <= allow.port <= high for low, high in rule.ports):
        return Overlap.NONE
    destination = allow.destination
    value = destination.value.lower()
    if destination.kind is Target.ADDRESS:
        address = parse_address(value)
        inside = address is not None and not (address - rule.destinations)
        return Overlap.FULL if inside else Overlap.NONE
    if destination.kind is Target.SERVICE_TAG:
        parent = value.split(".")[0]
        full = value in rule.destination_tags or parent in rule.destination_tags
        everywhere = bool(rule.destinations) and not (_ALL_V4 - rule.destinations)
        return Overlap.FULL if full or everywhere else Overlap.NONE
    if destination.kind is Target.FQDN_TAG:
        return Overlap.NONE
    if rule.destinations and not (_ALL_V4 - rule.destinations):
        return Overlap.FULL
    best = Overlap.NONE
    for fqdn in rule.destination_fqdns:
        if fqdn == value:
            return Overlap.FULL
        if destination.kind is Target.WILDCARD and pattern_overlap(fqdn, value) is not Overlap.NONE:
            best = Overlap.PARTIAL
    return best


def _application_overlap(rule: PolicyRule, allow: AllowRule) -> Overlap:
    if not allow.is_web or (allow.protocol.value, allow.port) not in rule.web_protocols:
        return Overlap.NONE
    destination = allow.destination
    if destination.kind is Target.FQDN_TAG:
        return Overlap.FULL if destination.value.lower() in rule.fqdn_tags else Overlap.NONE
    best = Overlap.NONE
    for target in rule.targets:
        overlap = pattern_overlap(target, destination.value.lower())
        if overlap is Overlap.FULL:
            return overlap
        if overlap is Overlap.PARTIAL:
            best = overlap
    return best


def _evaluate(
    allow: AllowRule, rules: Sequence[PolicyRule], candidates: Iterable[int], nodes: AddressSet
) -> tuple[Verdict, list[Decision], AddressSet, list[str]]:
    remaining = nodes
    decisions: list[Decision] = []
    notes: list[str] = []
    for index in candidates:
        rule = rules[index]
        if rule.layer is Layer.NETWORK:
            overlap = _network_overlap(rule, allow)
        else:
            overlap = _application_overlap(rule, allow)
        if overlap is Overlap.NONE:
            continue
        part = remaining & rule.sources
        if not part:
            if rule.uses_ip_groups:
                notes.append(f"{rule.ref} uses IP groups, which the audit does not resolve")
            continue
        if overlap is Overlap.PARTIAL:
            if rule.action == "Allow":
                notes.append(f"{rule.ref} allows only some of the names")
                continue
            decisions.append(Decision(rule.ref, "Deny", tuple(part.cidrs()), some_names=True))
            continue
        decisions.append(Decision(rule.ref, rule.action, tuple(part.cidrs())))
        remaining = remaining - part
        if not remaining:
            break
    if any(d.action == "Deny" for d in decisions):
        verdict = Verdict.DENIED
    elif remaining:
        verdict = Verdict.NOT_COVERED
    else:
        verdict = Verdict.ALLOWED
    return verdict, decisions, remaining, notes


def _broad(rule: PolicyRule) -> BroadRule | None:
    if rule.action != "Allow":
        return None
    reasons = []
    if rule.sources.is_everything():
        reasons.append("any source")
    if rule.layer is Layer.NETWORK:
        if rule.destinations and not (_ALL_V4 - rule.destinations):
            reasons.append("any destination address (* or 0.0.0.0/0)")
        if any(low <= 1 and high >= 65535 for low, high in rule.ports):
            reasons.append("any port")
    for target in (*rule.targets, *rule.destination_fqdns):
        if target == "*":
            reasons.append("any name (*)")
        elif target.startswith("*") and target.lstrip("*.").count(".") == 0:
            reasons.append(f"a whole top-level domain ({target})")
    return BroadRule(rule.ref, tuple(reasons)) if reasons else None


def audit_policy(
    policy: Policy, allowlist: Allowlist, severities: Mapping[str, str] | None = None
) -> AuditResult:
    """The verdict for every requirement of `allowlist`, and the policy's too-broad rules."""
    if not allowlist.source_cidrs:
        raise AuditError(
            "no source CIDRs: set network.source_cidrs in the config or pass --source-cidr"
        )
    nodes = AddressSet.of(
        [r for c in allowlist.source_cidrs for r in (parse_address(c) or AddressSet()).ranges]
    )
    index = _Index(policy.rules)
    verdicts: list[RequirementVerdict] = []
    for allow in allowlist.rules:
        verdict, decisions, remaining, notes = _evaluate(
            allow, policy.rules, index.candidates(allow), nodes
        )
        if verdict is not Verdict.ALLOWED and allow.destination.is_name:
            notes += [
                f"{ref} may carry it (a tag or address range; the name's addresses are not known)"
                for ref in index.possible(allow)
            ]
        for requirement_id in allow.requirement_ids:
            verdicts.append(
                RequirementVerdict(
                    requirement_id=requirement_id,
                    destination=allow.destination.value,
                    protocol=allow.protocol,
                    port=allow.port,
                    phases=allow.phases,
                    severity=(severities or {}).get(requirement_id, allow.severity),
                    verdict=verdict,
                    decisions=tuple(decisions),
                    uncovered=tuple(remaining.cidrs()),
                    notes=tuple(dict.fromkeys(notes)),
                )
            )
    broad = tuple(b for b in map(_broad, policy.rules) if b is not None)
    return AuditResult(
        verdicts=tuple(verdicts),
        broad_rules=broad,
        skipped=allowlist.skipped,
        groups=policy.groups,
        rule_count=len(policy.rules),
        sources=allowlist.source_cidrs,
        policy_notes=policy.skipped,
    )
