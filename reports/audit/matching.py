"""Azure Firewall's matching rules: address sets, port ranges, and FQDN patterns.

Address sets are unions of integer ranges per IP version, so a rule that covers only part of
the node subnets decides only for that part (the rest goes on to the next rule), exactly as
the firewall sees one packet at a time.

Target FQDN patterns (application rules): `*` matches every name; `*.x` any subdomain at any
depth but not `x`; `*x` (no dot) any name that ends with `x`, including `x` itself and
`ax`; anything else is an exact, case-insensitive name.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from enum import Enum

Range = tuple[int, int, int]  # (ip version, first, last)


@dataclass(frozen=True, slots=True)
class AddressSet:
    """A union of address ranges; `ranges` are sorted and disjoint per version."""

    ranges: tuple[Range, ...] = ()

    @staticmethod
    def of(ranges: list[Range]) -> AddressSet:
        ranges = sorted(ranges)
        merged: list[Range] = []
        for version, first, last in ranges:
            if merged and merged[-1][0] == version and first <= merged[-1][2] + 1:
                prev = merged[-1]
                merged[-1] = (version, prev[1], max(prev[2], last))
            else:
                merged.append((version, first, last))
        return AddressSet(tuple(merged))

    @staticmethod
    def everything() -> AddressSet:
        return AddressSet(((4, 0, 2**32 - 1), (6, 0, 2**128 - 1)))

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def __and__(self, other: AddressSet) -> AddressSet:
        return AddressSet(_intersect(self.ranges, other.ranges))

    def __sub__(self, other: AddressSet) -> AddressSet:
        return AddressSet(_subtract(self.ranges, other.ranges))

    def is_everything(self) -> bool:
        return not (AddressSet.everything() - self)

    def cidrs(self) -> list[str]:
        return list(_cidrs(self.ranges))


# The same few node subnets meet the same rule sources again and again: cache the results.
@functools.lru_cache(maxsize=8192)
def _intersect(ours: tuple[Range, ...], theirs: tuple[Range, ...]) -> tuple[Range, ...]:
    out: list[Range] = []
    for version, first, last in ours:
        for v2, f2, l2 in theirs:
            if v2 == version and f2 <= last and first <= l2:
                out.append((version, max(first, f2), min(last, l2)))
    return AddressSet.of(out).ranges


@functools.lru_cache(maxsize=8192)
def _subtract(ours: tuple[Range, ...], theirs: tuple[Range, ...]) -> tuple[Range, ...]:
    out: list[Range] = []
    for version, first, last in ours:
        pieces = [(first, last)]
        for v2, f2, l2 in theirs:
            if v2 != version:
                continue
            next_pieces = []
            for a, b in pieces:
                if l2 < a or f2 > b:
                    next_pieces.append((a, b))
                    continue
                if a < f2:
                    next_pieces.append((a, f2 - 1))
                if l2 < b:
                    next_pieces.append((l2 + 1, b))
            pieces = next_pieces
        out.extend((version, a, b) for a, b in pieces)
    return AddressSet.of(out).ranges


@functools.lru_cache(maxsize=4096)
def _cidrs(ranges: tuple[Range, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for version, first, last in ranges:
        cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
        out.extend(str(n) for n in ipaddress.summarize_address_range(cls(first), cls(last)))
    return tuple(out)


@functools.lru_cache(maxsize=65536)
def parse_address(value: str) -> AddressSet | None:
    """`*`, an address, a CIDR or `first-last`; None when it is none of these (a tag)."""
    text = value.strip()
    if text == "*":
        return AddressSet.everything()
    try:
        if "-" in text and "/" not in text:
            first_text, last_text = text.split("-", 1)
            first = ipaddress.ip_address(first_text.strip())
            last = ipaddress.ip_address(last_text.strip())
            if first.version != last.version or int(last) < int(first):
                return None
            return AddressSet(((first.version, int(first), int(last)),))
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    first_int = int(network.network_address)
    return AddressSet(((network.version, first_int, first_int + network.num_addresses - 1),))


def parse_ports(values: list[str]) -> tuple[tuple[int, int], ...] | None:
    """Ports such as `443`, `8000-8999`, `*`; None when one is not a port at all."""
    out = []
    for value in values:
        text = str(value).strip()
        if text == "*":
            out.append((0, 65535))
            continue
        first, _, last = text.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            return None
        out.append((int(first), int(last or first)))
    return tuple(out)


class Overlap(Enum):
    """How much of a requirement's names a pattern matches."""

    NONE = 0
    PARTIAL = 1
    FULL = 2


def pattern_overlap(pattern: str, host: str) -> Overlap:
    """How Azure Firewall's target FQDN `pattern` relates to `host` (a name or `*.suffix`)."""
    pattern = pattern.strip().lower()
    if pattern == "*":
        return Overlap.FULL
    wildcard_host = host.startswith("*.")
    if pattern.startswith("*."):
        suffix = pattern[2:]
        if not wildcard_host:
            return Overlap.FULL if host.endswith("." + suffix) else Overlap.NONE
        host_suffix = host[2:]
        if host_suffix == suffix or host_suffix.endswith("." + suffix):
            return Overlap.FULL
        return Overlap.PARTIAL if suffix.endswith("." + host_suffix) else Overlap.NONE
    if pattern.startswith("*"):
        tail = pattern[1:]
        if not wildcard_host:
            return Overlap.FULL if host.endswith(tail) else Overlap.NONE
        if ("." + host[2:]).endswith(tail):
            return Overlap.FULL
        return Overlap.PARTIAL if tail.endswith("." + host[2:]) else Overlap.NONE
    if not wildcard_host:
        return Overlap.FULL if pattern == host else Overlap.NONE
    return Overlap.PARTIAL if pattern.endswith("." + host[2:]) else Overlap.NONE


def label_suffixes(name: str) -> list[str]:
    """`a.b.c` -> [`a.b.c`, `b.c`, `c`]."""
    labels = name.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]
