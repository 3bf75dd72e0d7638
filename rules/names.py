"""Validators for everything that may end up inside a firewall rule or a manifest.

They accept only plain ASCII DNS names, IP addresses and CIDRs, so quotes, whitespace,
shell metacharacters and Unicode look-alikes never get past the config.
"""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_WILDCARD_PREFIX = "*."
_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
)


def check_label(value: str) -> str | None:
    """Return why `value` is not a DNS label (RFC 1123), or None when it is one."""
    if not value.isascii():
        return "must be ASCII"
    if not 1 <= len(value) <= 63:
        return "a DNS label has 1 to 63 characters"
    if not _LABEL.fullmatch(value):
        return "a DNS label has lowercase letters, digits and inner hyphens only"
    return None


def check_hostname(value: str, *, allow_wildcard: bool = False) -> str | None:
    """Return why `value` is not a fully qualified host name, or None when it is one.

    Lowercase only: callers lower-case user input first, so a rule never depends on case.
    A trailing dot is not accepted (firewalls disagree about it).
    """
    if _HOSTNAME.fullmatch(value) and not value.rsplit(".", 1)[-1].isdigit():
        return None  # the common case, decided by one compiled pattern
    if allow_wildcard and value.startswith(_WILDCARD_PREFIX) and _HOSTNAME.fullmatch(value[2:]):
        return check_hostname(value[2:])
    if not value.isascii():
        return "must be ASCII (no Unicode look-alikes)"
    if not value:
        return "must not be empty"
    if len(value) > 253:
        return "a host name has at most 253 characters"
    name = value
    if allow_wildcard and name.startswith(_WILDCARD_PREFIX):
        name = name[len(_WILDCARD_PREFIX) :]
    labels = name.split(".")
    if len(labels) < 2:
        return "must be a fully qualified name with at least two labels"
    for label in labels:
        problem = check_label(label)
        if problem:
            return f"label {label!r}: {problem}"
    if labels[-1].isdigit():
        return "the last label must not be numeric"
    return None


def is_ip_address(value: str) -> bool:
    """An IPv4 or IPv6 literal, without an IPv6 zone (``%eth0`` has no place in a rule)."""
    if "%" in value or not value.isascii():
        return False
    if ":" not in value and not value.replace(".", "").isdigit():
        return False  # the common case, a host name: skip the parser
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def check_host_or_ip(value: str) -> str | None:
    """A host name or an IP address literal (for a dependency reached by address)."""
    if is_ip_address(value):
        return None
    return check_hostname(value)


def check_cidr(value: str) -> str | None:
    """Return why `value` is not a CIDR network (host bits clear), or None."""
    if not value.isascii() or value.strip() != value:
        return "must be an ASCII CIDR such as 10.240.0.0/16"
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        return f"not a CIDR network ({exc})"
    return None


def check_port(value: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        return "a port is a whole number from 1 to 65535"
    return None


ADDRESS_PRIVATE = "private"
ADDRESS_PUBLIC = "public"
ADDRESS_LOOPBACK = "loopback"
ADDRESS_LINK_LOCAL = "link-local"
ADDRESS_RESERVED = "reserved"

_PRIVATE_NETS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)


def classify_address(value: str) -> str:
    """Classify an address as private (RFC 1918 / ULA), loopback, link-local, reserved or public.

    Documentation and benchmark ranges count as public: what matters for a private endpoint
    is whether the answer is in a private network, not whether the address is routable.
    """
    address = ipaddress.ip_address(value)
    if address.is_loopback:
        return ADDRESS_LOOPBACK
    if address.is_link_local:
        return ADDRESS_LINK_LOCAL
    if any(address in net for net in _PRIVATE_NETS):
        return ADDRESS_PRIVATE
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return ADDRESS_RESERVED
    return ADDRESS_PUBLIC
