"""Re-checks of every value an allowlist emits, against `rules.names` (defence in depth).

The config layer already rejects hostile values; these checks run again at the point of
emission, so a value that slipped past (a user catalogue, a future code path, a resolver
answer) raises `UnsafeValueError` instead of ending up inside a firewall rule or a script.
"""

from __future__ import annotations

import ipaddress
import re

from reports.allowlist.errors import UnsafeValueError
from rules.names import check_cidr, check_hostname, check_port, is_ip_address

# Service tags and FQDN tags: `AzureCloud`, `AzureCloud.westeurope`, `AzureFrontDoor.FirstParty`.
_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9]{1,62}(\.[A-Za-z][A-Za-z0-9]{0,62})?$")
# Rule, collection and set names every target format accepts.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
# Free text (descriptions, comments) must be inert in every format: printable ASCII without
# the characters that open a string, an escape or an interpolation in any of them.
_TEXT_FORBIDDEN = re.compile(r'[^\x20-\x7e]|["`\\${}]')
MAX_TEXT = 1000


def host(value: str, where: str, *, wildcard: bool = False) -> str:
    """A fully qualified name (optionally `*.`-prefixed), lowercase ASCII."""
    problem = check_hostname(value, allow_wildcard=wildcard)
    if problem:
        raise UnsafeValueError(where, value, problem)
    return value


def address(value: str, where: str) -> str:
    """An IP address literal, in its canonical spelling."""
    if not is_ip_address(value):
        raise UnsafeValueError(where, value, "not an IP address")
    return str(ipaddress.ip_address(value))


def cidr(value: str, where: str) -> str:
    problem = check_cidr(value)
    if problem:
        raise UnsafeValueError(where, value, problem)
    return value


def port(value: int, where: str) -> int:
    problem = check_port(value)
    if problem:
        raise UnsafeValueError(where, value, problem)
    return value


def tag(value: str, where: str) -> str:
    if not value.isascii() or not _TAG.match(value):
        raise UnsafeValueError(where, value, "a tag is letters and digits, optionally .Region")
    return value


def name(value: str, where: str) -> str:
    if not value.isascii() or not _NAME.match(value):
        raise UnsafeValueError(where, value, "a name is 1 to 80 letters, digits, '_', '.', '-'")
    return value


def text(value: str, where: str) -> str:
    """Free text for a comment or description: printable ASCII, no quote/escape characters."""
    if len(value) > MAX_TEXT:
        raise UnsafeValueError(where, value[:40] + "...", f"at most {MAX_TEXT} characters")
    bad = _TEXT_FORBIDDEN.search(value)
    if bad:
        raise UnsafeValueError(
            where, value, f"character {bad.group()!r} is not allowed in comments and descriptions"
        )
    return value


def rule_name(raw: str) -> str:
    """A rule name derived from a requirement id (`azureml-aks/mcr` -> `azureml-aks-mcr`)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", raw).strip("-._")[:80] or "rule"
    return name(cleaned, "rule name")
