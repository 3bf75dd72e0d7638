"""The network lab: a simulated AKS node behind a firewall, with real DNS and TLS endpoints.

Public surface (everything else in this package is private)::

    spec = spec_from_hosts([("mcr.microsoft.com", (443,))], drop=["mcr.microsoft.com"])
    state = up(spec)                      # root on Linux; well under a second for 20 hosts
    exec_in_node(state, ["aksflight", "check", ...])
    apply_firewall(state, allowlist_text) # see docs/lab.md for the allowlist contract
    down(spec.name)                       # idempotent, also after a crash

Errors are `LabError` (one-line message); see `aksflight.lab.errors` for the tree.
"""

from aksflight.lab.errors import (
    LabCommandError,
    LabEnvironmentError,
    LabError,
    LabSpecError,
    LabStateError,
)
from aksflight.lab.firewall import apply_firewall, firewall_listing, flush_firewall_allowlist
from aksflight.lab.lifecycle import (
    LabState,
    LabStatus,
    LabTeardown,
    default_state_dir,
    down,
    exec_in_node,
    load_state,
    status,
    up,
)
from aksflight.lab.render import ALLOWLIST_CHAIN, FIREWALL_TABLE
from aksflight.lab.spec import DEFAULT_LAB_NAME, LabHost, LabSpec, spec_from_hosts

__all__ = [
    "ALLOWLIST_CHAIN",
    "DEFAULT_LAB_NAME",
    "FIREWALL_TABLE",
    "LabCommandError",
    "LabEnvironmentError",
    "LabError",
    "LabHost",
    "LabSpec",
    "LabSpecError",
    "LabState",
    "LabStateError",
    "LabStatus",
    "LabTeardown",
    "apply_firewall",
    "default_state_dir",
    "down",
    "exec_in_node",
    "firewall_listing",
    "flush_firewall_allowlist",
    "load_state",
    "spec_from_hosts",
    "status",
    "up",
]
