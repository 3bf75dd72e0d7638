"""Default deny, and an allowlist that opens exactly the hosts it names."""

from __future__ import annotations

import pytest

from aksflight.lab import (
    ALLOWLIST_CHAIN,
    FIREWALL_TABLE,
    LabCommandError,
    LabSpecError,
    LabState,
    apply_firewall,
    firewall_listing,
    flush_firewall_allowlist,
)
from tests.lab.conftest import LabFactory
from tests.lab.test_lab_network import connect, resolve

pytestmark = pytest.mark.lab

ALLOWED = "mcr.microsoft.com"
OTHER = "acr1.azurecr.io"
DROPPED = "dropped.example.com"


def allowlist_for(state: LabState, *hosts: str, port: int = 443) -> str:
    """What a generated allowlist looks like for the lab: accepts in chain `allowlist`."""
    rules = "\n".join(
        f"\t\tip daddr {state.hosts[host]} tcp dport {port} accept  # {host}" for host in hosts
    )
    return f"table inet {FIREWALL_TABLE} {{\n\tchain {ALLOWLIST_CHAIN} {{\n{rules}\n\t}}\n}}\n"


@pytest.fixture
def deny_lab(make_lab: LabFactory) -> LabState:
    return make_lab(
        [(ALLOWED, (443,)), (OTHER, (443,)), (DROPPED, (443,))],
        default_deny=True,
        drop=[DROPPED],
    )


def test_default_deny_blocks_egress_but_not_dns(deny_lab: LabState) -> None:
    assert resolve(deny_lab, ALLOWED)["addresses"] == [deny_lab.hosts[ALLOWED]]
    assert connect(deny_lab, ALLOWED, timeout=0.3)["status"] == "timeout"
    assert connect(deny_lab, OTHER, timeout=0.3)["status"] == "timeout"


def test_allowlist_opens_one_host_only_and_flush_closes_it(deny_lab: LabState) -> None:
    apply_firewall(deny_lab, allowlist_for(deny_lab, ALLOWED))
    assert connect(deny_lab, ALLOWED, cafile=deny_lab.ca_bundle)["status"] == "connected"
    assert connect(deny_lab, OTHER, timeout=0.3)["status"] == "timeout"

    flush_firewall_allowlist(deny_lab)
    assert connect(deny_lab, ALLOWED, timeout=0.3)["status"] == "timeout"


def test_applying_again_replaces_the_allowlist(deny_lab: LabState) -> None:
    apply_firewall(deny_lab, allowlist_for(deny_lab, ALLOWED))
    apply_firewall(deny_lab, allowlist_for(deny_lab, OTHER))
    assert connect(deny_lab, OTHER, cafile=deny_lab.ca_bundle)["status"] == "connected"
    assert connect(deny_lab, ALLOWED, timeout=0.3)["status"] == "timeout"
    assert firewall_listing(deny_lab).count("tcp dport 443 accept") == 1


def test_a_lab_drop_wins_over_the_allowlist(deny_lab: LabState) -> None:
    apply_firewall(deny_lab, allowlist_for(deny_lab, DROPPED))
    assert connect(deny_lab, DROPPED, timeout=0.3)["status"] == "timeout"


def test_allowlist_with_named_set_works(deny_lab: LabState) -> None:
    address = deny_lab.hosts[ALLOWED]
    ruleset = (
        f"table inet {FIREWALL_TABLE} {{\n"
        f"\tset egress_v4 {{ type ipv4_addr; elements = {{ {address} }} }}\n"
        f"\tchain {ALLOWLIST_CHAIN} {{ ip daddr @egress_v4 tcp dport 443 accept; }}\n"
        "}\n"
    )
    apply_firewall(deny_lab, ruleset)
    assert connect(deny_lab, ALLOWED, cafile=deny_lab.ca_bundle)["status"] == "connected"


def test_allowlist_with_its_own_base_chain_is_refused_and_rolled_back(
    deny_lab: LabState,
) -> None:
    ruleset = (
        "table inet egress {\n\tchain output {\n"
        "\t\ttype filter hook forward priority filter; policy accept;\n"
        f"\t\tip daddr {deny_lab.hosts[ALLOWED]} accept\n\t}}\n}}\n"
    )
    with pytest.raises(LabSpecError, match="table inet egress"):
        apply_firewall(deny_lab, ruleset)
    assert "egress" not in firewall_listing(deny_lab)


def test_allowlist_nft_rejects_keeps_previous_rules(deny_lab: LabState) -> None:
    apply_firewall(deny_lab, allowlist_for(deny_lab, ALLOWED))
    with pytest.raises(LabCommandError, match="nft rejected the allowlist") as caught:
        apply_firewall(deny_lab, "table inet aksflight { chain allowlist { ip daddr nonsense; } }")
    assert "\n" not in str(caught.value)
    assert connect(deny_lab, ALLOWED, cafile=deny_lab.ca_bundle)["status"] == "connected"


def test_empty_allowlist_is_bad_input(deny_lab: LabState) -> None:
    with pytest.raises(LabSpecError, match="empty"):
        apply_firewall(deny_lab, "  \n")


def test_allowlist_may_name_hosts_resolved_through_the_lab_dns(deny_lab: LabState) -> None:
    ruleset = (
        f"table inet {FIREWALL_TABLE} {{\n\tchain {ALLOWLIST_CHAIN} {{\n"
        f"\t\tip daddr {{ {OTHER} }} tcp dport 443 accept\n\t}}\n}}\n"
    )
    apply_firewall(deny_lab, ruleset)
    assert deny_lab.hosts[OTHER] in firewall_listing(deny_lab)
    assert connect(deny_lab, OTHER, cafile=deny_lab.ca_bundle)["status"] == "connected"
    assert connect(deny_lab, ALLOWED, timeout=0.3)["status"] == "timeout"
