"""Firewall allowlists generated from the same requirements the preflight checks.

    build_allowlist(requirements, source_cidrs, ...) -> Allowlist      (format-neutral rules)
    render_allowlist(fmt, allowlist, RenderOptions(...)) -> Rendered    (text + warnings)

Formats: azure-firewall (ARM JSON of a rule collection group), bicep, terraform, az-cli,
nsg, squid, nftables, cilium, csv, txt. Every emitted value is re-validated at emission
(`reports.allowlist.safety`); errors derive from `AllowlistError`.
"""

from reports.allowlist.errors import (
    AllowlistError,
    NoSourcesError,
    UnsafeValueError,
    UnsupportedError,
)
from reports.allowlist.options import RenderOptions
from reports.allowlist.render import FORMATS, Rendered, render_allowlist
from reports.allowlist.ruleset import (
    Allowlist,
    AllowRule,
    Destination,
    Skipped,
    Target,
    build_allowlist,
)
from reports.allowlist.wildcards import Semantics, name_matches

__all__ = [
    "FORMATS",
    "AllowRule",
    "Allowlist",
    "AllowlistError",
    "Destination",
    "NoSourcesError",
    "RenderOptions",
    "Rendered",
    "Semantics",
    "Skipped",
    "Target",
    "UnsafeValueError",
    "UnsupportedError",
    "build_allowlist",
    "name_matches",
    "render_allowlist",
]
