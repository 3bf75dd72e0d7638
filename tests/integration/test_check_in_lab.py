"""`aksflight check` inside the network lab: real dnsmasq, TLS endpoints and nftables.

Each test builds a lab for `examples/lab.yaml` with one behaviour, runs the real command in
the simulated node namespace, and asserts exact check ids, statuses and the first phase
that breaks.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import EXAMPLES

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(
        sys.platform != "linux"
        or os.geteuid() != 0
        or not all(shutil.which(t) for t in ("ip", "nft", "dnsmasq")),
        reason="the lab needs root, ip, nft and dnsmasq",
    ),
]

CONFIG = EXAMPLES / "lab.yaml"
API = "lab-aks-00000000.hcp.eastus.azmk8s.io"
MCR = "mcr.microsoft.com"
BLOB = "labstorage01.blob.core.windows.net"
TABLE = "labstorage01.table.core.windows.net"
ACR = "labacr01.azurecr.io"
KUSTO = "ingest-viennaeastus.kusto.windows.net"


class Lab:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.states: list[Any] = []

    def up(self, **behaviours: Any) -> Any:
        import argparse

        from aksflight.commands.lab import plan_hosts
        from aksflight.lab.lifecycle import up
        from aksflight.lab.spec import spec_from_hosts

        hosts = plan_hosts(argparse.Namespace(config=CONFIG))
        name = "t" + secrets.token_hex(3)
        state = up(spec_from_hosts(hosts, name=name, **behaviours), self.tmp_path / name)
        self.states.append(state)
        return state

    def check(
        self, state: Any, *extra: str, config: Path = CONFIG
    ) -> tuple[int, dict[str, Any], float]:
        from aksflight.lab.lifecycle import exec_in_node

        argv = [
            sys.executable,
            "-m",
            "aksflight",
            "check",
            "-c",
            str(config),
            "--nameserver",
            state.nameserver,
            "--ca-bundle",
            state.ca_bundle,
            "-o",
            "json",
            *extra,
        ]
        started = time.perf_counter()
        result = exec_in_node(state, argv, timeout=60)
        wall = time.perf_counter() - started
        assert result.returncode in (0, 1), result.stderr
        return result.returncode, json.loads(result.stdout), wall

    def close(self) -> None:
        from aksflight.lab.lifecycle import down

        for state in self.states:
            down(state.name, state.state_dir)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    handle = Lab(tmp_path)
    try:
        yield handle
    finally:
        handle.close()


def _checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in report["checks"]}


def _assert_blocked(checks: dict[str, dict[str, Any]], ids: list[str], root: str) -> None:
    for check_id in ids:
        assert checks[check_id]["status"] == "blocked", check_id
        assert checks[check_id]["blocked_by"] == root, check_id


def test_fully_open_lab_passes(lab: Lab) -> None:
    state = lab.up()
    code, report, _ = lab.check(state)
    assert code == 0
    assert report["verdict"] == "pass" and report["first_failing_phase"] is None
    checks = _checks(report)
    assert {c["status"] for c in checks.values()} <= {"pass", "skipped"}
    skipped = sorted(i for i, c in checks.items() if c["status"] == "skipped")
    assert skipped == ["k8s:discovery-rbac", "k8s:version", "peer:model-pods", "peer:router"]
    assert checks[f"dns:{MCR}"]["evidence"]["addresses"] == [state.hosts[MCR]]


def test_dropped_host_times_out(lab: Lab) -> None:
    state = lab.up(drop=[ACR])
    code, report, _ = lab.check(state, "--timeout", "1")
    checks = _checks(report)
    assert code == 1
    assert checks[f"tcp:{ACR}:443"]["status"] == "fail"
    assert checks[f"tcp:{ACR}:443"]["reason"].startswith("timeout")
    _assert_blocked(checks, [f"tls:{ACR}:443", f"http:{ACR}:443"], f"tcp:{ACR}:443")
    assert report["first_failing_phase"] == "model-deploy"
    assert checks[f"http:{BLOB}:443"]["status"] == "pass"


def test_rejected_host_is_refused(lab: Lab) -> None:
    state = lab.up(reject=[TABLE])
    code, report, _ = lab.check(state)
    checks = _checks(report)
    assert code == 1
    assert checks[f"tcp:{TABLE}:443"]["reason"].startswith("refused")
    assert checks[f"tcp:{TABLE}:443"]["duration_ms"] < 500
    assert report["first_failing_phase"] == "router-running"
    # Model deployment waits on a running router: blocked by the table storage failure.
    _assert_blocked(checks, [f"dns:{ACR}", f"tcp:{ACR}:443"], f"tcp:{TABLE}:443")


def test_nxdomain_blocks_every_dependant(lab: Lab) -> None:
    state = lab.up(nxdomain=[MCR])
    code, report, _ = lab.check(state)
    checks = _checks(report)
    assert code == 1
    assert checks[f"dns:{MCR}"]["reason"].startswith("nxdomain")
    root = f"dns:{MCR}"
    dependants = [
        f"tcp:{MCR}:443",
        f"tls:{MCR}:443",
        f"http:{MCR}:443",
        f"dns:{BLOB}",
        f"http:{ACR}:443",
        "tcp:features.postgres.database.azure.com:5432",
    ]
    _assert_blocked(checks, dependants, root)
    assert report["first_failing_phase"] == "router-install"
    assert {p["id"]: p["verdict"] for p in report["phases"]} == {
        "router-install": "fail",
        "router-startup": "blocked",
        "router-running": "blocked",
        "model-deploy": "blocked",
        "serving": "blocked",
    }


def test_dns_server_that_does_not_answer(lab: Lab) -> None:
    state = lab.up(dns_timeout=True)
    code, report, wall = lab.check(state, "--timeout", "1")
    checks = _checks(report)
    assert code == 1
    assert checks[f"dns:{API}"]["reason"].startswith("dns-timeout")
    assert checks[f"dns:{MCR}"]["reason"].startswith("dns-timeout")
    assert report["first_failing_phase"] == "router-install"
    assert wall < 10


def test_certificate_from_another_ca_is_untrusted(lab: Lab) -> None:
    state = lab.up(other_ca=[ACR])
    code, report, _ = lab.check(state)
    checks = _checks(report)
    assert code == 1
    assert checks[f"tls:{ACR}:443"]["reason"].startswith("untrusted")
    assert checks[f"tcp:{ACR}:443"]["status"] == "pass"
    _assert_blocked(checks, [f"http:{ACR}:443"], f"tls:{ACR}:443")
    assert report["first_failing_phase"] == "model-deploy"
    assert "TLS inspection" in checks[f"tls:{ACR}:443"]["remediation"]


def test_private_answers(lab: Lab, tmp_path: Path) -> None:
    data = yaml.safe_load(CONFIG.read_text())
    data["network"]["private_endpoints"] = ["registry"]
    with_pe = tmp_path / "private.yaml"
    with_pe.write_text(yaml.safe_dump(data))
    state = lab.up(privatelink=[ACR], private=[BLOB])
    code, report, _ = lab.check(state, config=with_pe)
    checks = _checks(report)
    acr = checks[f"dns:{ACR}"]
    assert acr["status"] == "pass" and "private endpoint" in acr["reason"]
    assert acr["evidence"]["privatelink"] is True
    assert acr["evidence"]["address_classes"][acr["evidence"]["addresses"][0]] == "private"
    # Blob storage has no private endpoint in the config, yet DNS answers privately: a warning.
    assert checks[f"dns:{BLOB}"]["status"] == "warn"
    assert code == 0 and report["verdict"] == "warn"
    code, report, _ = lab.check(state, "--strict", config=with_pe)
    assert code == 1


def test_three_dropped_hosts_overlap(lab: Lab) -> None:
    state = lab.up(drop=[BLOB, TABLE, KUSTO])
    code, report, _wall = lab.check(state, "--timeout", "2")
    checks = _checks(report)
    assert code == 1
    for host in (BLOB, TABLE, KUSTO):
        assert checks[f"tcp:{host}:443"]["reason"].startswith("timeout")
    assert report["duration_s"] < 3.0, report["duration_s"]
