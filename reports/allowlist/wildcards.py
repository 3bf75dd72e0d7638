"""What `*.suffix` means in each firewall, and merging rules one wildcard already covers.

The catalogue's wildcards come from Azure documentation, so `*.suffix` means any subdomain
at any depth, not the apex (Azure Firewall's reading). Formats translate it without widening:
Azure Firewall keeps `*.suffix`; Squid gets a regex that excludes the apex (its `.suffix`
would add it); Cilium's `*.suffix` matches one label only, which is narrower, so it is kept
with a warning; nftables and NSGs cannot match names at all.

Compaction is exact: a rule is folded into a wildcard rule of the same protocol and port only
when the wildcard, read the way the target format reads it, matches everything the rule
matches, so the set of allowed flows does not change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum

from reports.allowlist.ruleset import AllowRule, Target, merge
from rules.model import Protocol


class Semantics(StrEnum):
    ANY_DEPTH = "any-depth"  # Azure Firewall `*.x`, the Squid regex we emit
    ONE_LABEL = "one-label"  # Cilium `*.x`
    NONE = "none"  # nftables, NSG: no names at all


def name_matches(pattern: str, name: str, semantics: Semantics) -> bool:
    """Whether `pattern` (a name or `*.suffix`) matches the concrete `name`."""
    if not pattern.startswith("*."):
        return pattern == name
    suffix = pattern[2:]
    if semantics is Semantics.NONE or not name.endswith("." + suffix):
        return False
    head = name[: -len(suffix) - 1]
    return bool(head) and (semantics is Semantics.ANY_DEPTH or "." not in head)


def _covering_suffixes(rule: AllowRule, semantics: Semantics) -> list[str]:
    """Suffixes `s` such that a wildcard `*.s` would cover `rule`'s destination, widest first."""
    if semantics is Semantics.NONE or not rule.destination.is_name:
        return []
    labels = rule.destination.suffix.split(".")
    if rule.destination.kind is Target.WILDCARD:
        # `*.a.b` is covered by `*.b` (any depth) but never by another one-label wildcard.
        candidates = [".".join(labels[i:]) for i in range(1, len(labels))]
        return candidates[::-1] if semantics is Semantics.ANY_DEPTH else []
    if semantics is Semantics.ONE_LABEL:
        return [".".join(labels[1:])]
    return [".".join(labels[i:]) for i in range(1, len(labels))][::-1]


def compact(
    rules: Sequence[AllowRule],
    semantics: Semantics,
    emitted: Callable[[AllowRule], bool] = lambda rule: True,
) -> list[AllowRule]:
    """Fold every rule that a wildcard rule (same protocol and port) covers into that rule.

    Only wildcards the format will actually write (`emitted`) may absorb other rules, so a
    name is never folded into a wildcard that is then left out.
    """
    wildcards: dict[tuple[str, Protocol, int], int] = {
        (r.destination.suffix, r.protocol, r.port): i
        for i, r in enumerate(rules)
        if r.destination.kind is Target.WILDCARD and emitted(r)
    }
    if not wildcards or semantics is Semantics.NONE:
        return list(rules)
    target_of: dict[int, int] = {}
    for index, rule in enumerate(rules):
        for suffix in _covering_suffixes(rule, semantics):
            cover = wildcards.get((suffix, rule.protocol, rule.port))
            if cover is not None and cover != index:
                target_of[index] = cover
                break
    merged = list(rules)
    for index, cover in target_of.items():
        merged[cover] = merge(merged[cover], rules[index])
    return [rule for i, rule in enumerate(merged) if i not in target_of]
