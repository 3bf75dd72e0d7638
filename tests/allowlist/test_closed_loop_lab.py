"""The closed loop in the network lab: the generated nftables allowlist is exactly enough.

With the lab's firewall in default deny, `aksflight allowlist -f nftables --resolve` (run in
the node namespace, resolving through the lab's DNS) is loaded into the firewall's
`allowlist` chain; then `aksflight check` passes. Taking out the rule of one requirement
makes the check fail at the phase that requirement belongs to, at the right check.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import EXAMPLES
from tests.lab.lab_support import lab_unavailable_reason, unique_lab_name

pytestmark = pytest.mark.lab

CONFIG = EXAMPLES / "lab.yaml"
ACR = "labacr01.azurecr.io"
TABLE = "labstorage01.table.core.windows.net"


@pytest.fixture(scope="module")
def closed_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    reason = lab_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    from aksflight.commands.lab import plan_hosts
    from aksflight.lab import down, spec_from_hosts, up

    hosts = plan_hosts(argparse.Namespace(config=CONFIG))
    name = unique_lab_name()
    state_dir = tmp_path_factory.mktemp("closed-loop") / name
    state = up(spec_from_hosts(hosts, name=name, default_deny=True), state_dir)
    try:
        yield state
    finally:
        down(name, state_dir)


def _in_node(state: Any, *argv: str, timeout: float = 90) -> Any:
    from aksflight.lab import exec_in_node

    return exec_in_node(state, [sys.executable, "-m", "aksflight", *argv], timeout=timeout)


def _check(state: Any) -> tuple[int, dict[str, Any]]:
    done = _in_node(
        state,
        "check",
        "-c",
        str(CONFIG),
        "--nameserver",
        state.nameserver,
        "--ca-bundle",
        state.ca_bundle,
        "--timeout",
        "1",
        "-o",
        "json",
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.fixture(scope="module")
def generated(closed_lab: Any) -> str:
    done = _in_node(
        closed_lab,
        "allowlist",
        "-c",
        str(CONFIG),
        "-f",
        "nftables",
        "--resolve",
        "--nameserver",
        closed_lab.nameserver,
    )
    assert done.returncode == 0, done.stderr
    text: str = done.stdout
    return text


def _without_rule_of(text: str, requirement_id: str) -> str:
    lines = text.splitlines()
    marker = f'comment "{requirement_id} ['
    kept = [line for line in lines if marker not in line]
    assert len(kept) == len(lines) - 1, f"exactly one rule for {requirement_id}"
    return "\n".join(kept) + "\n"


def _failed(report: dict[str, Any]) -> set[str]:
    return {c["id"] for c in report["checks"] if c["status"] == "fail"}


def test_default_deny_fails_before_the_allowlist(closed_lab: Any) -> None:
    from aksflight.lab import flush_firewall_allowlist

    flush_firewall_allowlist(closed_lab)
    code, report = _check(closed_lab)
    assert code == 1
    assert report["first_failing_phase"] == "router-install"


def test_the_generated_allowlist_resolved_the_lab_addresses(
    closed_lab: Any, generated: str
) -> None:
    for host in (ACR, TABLE, "mcr.microsoft.com"):
        address = re.escape(closed_lab.hosts[host])
        pattern = rf"addresses of {re.escape(host)}\"\n\t\telements = {{ {address} }}"
        assert re.search(pattern, generated), host
    assert "hook" not in generated and "policy" not in generated.split("table inet")[1]


def test_applying_the_allowlist_makes_the_check_pass(closed_lab: Any, generated: str) -> None:
    from aksflight.lab import apply_firewall

    apply_firewall(closed_lab, generated)
    code, report = _check(closed_lab)
    assert report["verdict"] == "pass", _failed(report)
    assert code == 0
    assert report["first_failing_phase"] is None


@pytest.mark.parametrize(
    ("requirement_id", "phase", "failing"),
    [
        ("azureml-aks/acr", "model-deploy", f"tcp:{ACR}:443"),
        ("azureml-aks/storage-table", "router-running", f"tcp:{TABLE}:443"),
        ("extra/0", "serving", "tcp:features.postgres.database.azure.com:5432"),
    ],
)
def test_removing_one_rule_fails_at_that_rules_phase(
    closed_lab: Any, generated: str, requirement_id: str, phase: str, failing: str
) -> None:
    from aksflight.lab import apply_firewall

    apply_firewall(closed_lab, _without_rule_of(generated, requirement_id))
    code, report = _check(closed_lab)
    assert code == 1
    assert report["first_failing_phase"] == phase
    assert failing in _failed(report)
    assert next(c for c in report["checks"] if c["id"] == failing)["reason"].startswith("timeout")
