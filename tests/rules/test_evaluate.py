"""Evaluation: findings, blocked propagation, phase verdicts, the first failing phase."""

from __future__ import annotations

from typing import Any

from rules.catalogue import requirements_for
from rules.evaluate import evaluate
from rules.model import CheckKind, Observation, Phase, ProbeStatus, Status
from rules.names import classify_address
from rules.plan import Plan, build_plan
from tests.conftest import example_config

LAB = "lab.yaml"


def _plan(name: str = LAB, **kw: Any) -> Plan:
    return build_plan(requirements_for(example_config(name)), **kw)


def _ok(
    plan: Plan, address: str = "198.51.100.7", **overrides: Observation
) -> dict[str, Observation]:
    """Every probeable check answered OK, except the overrides."""
    out: dict[str, Observation] = {}
    for check in plan.checks.values():
        if check.unprobeable_reason or check.kind is CheckKind.KUBERNETES:
            continue
        evidence: dict[str, Any] = {}
        if check.kind is CheckKind.DNS:
            evidence = {
                "addresses": [address],
                "address_classes": {address: classify_address(address)},
                "server": "10.0.0.10",
                "cname_chain": [],
                "privatelink": False,
            }
        out[check.id] = Observation(check.id, ProbeStatus.OK, 1.0, evidence=evidence)
    out.update(overrides)
    return out


def _by_id(evaluation: Any) -> dict[str, Any]:
    return {f.check.id: f for f in evaluation.findings}


def test_all_open_passes() -> None:
    plan = _plan()
    ev = evaluate(plan, _ok(plan))
    assert ev.verdict is Status.PASS and ev.first_failing_phase is None
    statuses = {f.check.id: f.status for f in ev.findings}
    assert statuses["k8s:version"] is Status.SKIPPED  # not run: no credentials observation
    assert statuses["peer:router"] is Status.SKIPPED
    assert {v.phase: v.status for v in ev.phases}[Phase.MODEL_DEPLOY] is Status.PASS


def test_nxdomain_blocks_dependants_and_later_phases() -> None:
    plan = _plan()
    root = "dns:mcr.microsoft.com"
    obs = _ok(plan)
    for check_id in [c for c in obs if c.endswith(":mcr.microsoft.com:443")]:
        del obs[check_id]
    obs[root] = Observation(
        root, ProbeStatus.NXDOMAIN, 2.0, "no such name", {"server": "10.0.0.10"}
    )
    ev = evaluate(plan, obs)
    found = _by_id(ev)
    assert found[root].status is Status.FAIL
    assert "router-install" in found[root].remediation
    assert "forward it to Azure DNS" in found[root].remediation
    for dependant in (
        "tcp:mcr.microsoft.com:443",
        "tls:mcr.microsoft.com:443",
        "http:mcr.microsoft.com:443",
    ):
        assert found[dependant].status is Status.BLOCKED and found[dependant].blocked_by == root
    later = [
        f
        for f in ev.findings
        if f.check.phase is not Phase.ROUTER_INSTALL and not f.check.unprobeable_reason
    ]
    assert later and all(
        f.status is Status.BLOCKED and f.blocked_by == root
        for f in later
        if f.check.kind is not CheckKind.KUBERNETES
    )
    assert ev.first_failing_phase is Phase.ROUTER_INSTALL
    verdicts = {v.phase: v.status for v in ev.phases}
    assert verdicts[Phase.ROUTER_INSTALL] is Status.FAIL
    assert verdicts[Phase.SERVING] is Status.BLOCKED


def test_keep_going_probes_later_phases() -> None:
    plan = _plan(keep_going=True)
    root = "tcp:labstorage01.blob.core.windows.net:443"
    obs = _ok(plan)
    obs[root] = Observation(
        root, ProbeStatus.TIMEOUT, 2000.0, "timed out", {"address": "198.51.100.6"}
    )
    acr = "tcp:labacr01.azurecr.io:443"
    obs[acr] = Observation(acr, ProbeStatus.REFUSED, 1.0, "refused", {"address": "198.51.100.5"})
    for c in ("tls", "http"):
        del obs[f"{c}:labstorage01.blob.core.windows.net:443"], obs[f"{c}:labacr01.azurecr.io:443"]
    ev = evaluate(plan, obs)
    found = _by_id(ev)
    assert found[root].status is Status.FAIL and found[acr].status is Status.FAIL
    assert found["http:labacr01.azurecr.io:443"].blocked_by == acr
    assert found["tcp:features.postgres.database.azure.com:5432"].status is Status.PASS
    assert ev.first_failing_phase is Phase.ROUTER_RUNNING
    assert "silently dropped" in found[root].remediation
    assert "rejected" in found[acr].remediation


def test_warn_level_failure_does_not_stop_the_next_phase() -> None:
    plan = _plan()
    kusto = "dns:ingest-viennaeastus.kusto.windows.net"
    obs = {k: v for k, v in _ok(plan).items() if "kusto" not in k}
    obs[kusto] = Observation(kusto, ProbeStatus.DNS_TIMEOUT, 3000.0, "", {"server": "10.0.0.10"})
    ev = evaluate(plan, obs)
    found = _by_id(ev)
    assert found[kusto].status is Status.WARN
    assert found["tcp:ingest-viennaeastus.kusto.windows.net:443"].status is Status.BLOCKED
    assert found["http:labacr01.azurecr.io:443"].status is Status.PASS
    assert ev.verdict is Status.WARN and ev.first_failing_phase is None


def test_private_endpoint_answers() -> None:
    plan = _plan("token-auth-private-endpoints.yaml")
    acr = "dns:mlweuacr.azurecr.io"
    public = _ok(plan)
    ev = evaluate(plan, public)
    found = _by_id(ev)
    assert found[acr].status is Status.FAIL and "privatelink.azurecr.io" in found[acr].remediation
    # Storage has a private endpoint too, and blob storage is needed from router-running on.
    assert found["dns:mlweustorage.blob.core.windows.net"].status is Status.FAIL
    assert ev.first_failing_phase is Phase.ROUTER_RUNNING
    private = _ok(plan, address="10.1.2.3")
    found = _by_id(evaluate(plan, private))
    assert found[acr].status is Status.PASS
    # A private answer for a host without a private endpoint is suspicious, not fatal.
    assert found["dns:mcr.microsoft.com"].status is Status.WARN


def test_sinkholed_answer_fails() -> None:
    plan = _plan()
    found = _by_id(evaluate(plan, _ok(plan, address="0.0.0.0")))
    assert found["dns:mcr.microsoft.com"].status is Status.FAIL
    assert "sinkholed" in found["dns:mcr.microsoft.com"].reason


def test_api_server_through_a_proxy_warns() -> None:
    plan = _plan()
    api = "http:lab-aks-00000000.hcp.eastus.azmk8s.io:443"
    obs = _ok(plan)
    obs[api] = Observation(
        api, ProbeStatus.OK, 3.0, evidence={"status_code": 401, "via_proxy": "http://proxy:3128"}
    )
    found = _by_id(evaluate(plan, obs))
    assert found[api].status is Status.WARN and "NO_PROXY" in found[api].remediation


def test_phase_selection_keeps_prerequisites_of_other_phases() -> None:
    plan = _plan(phases=[Phase.SERVING])
    assert plan.phases == (Phase.SERVING,)
    assert "tcp:features.postgres.database.azure.com:5432" in plan.checks
    assert "dns:mcr.microsoft.com" not in plan.checks
    ev = evaluate(plan, _ok(plan))
    assert [v.phase for v in ev.phases] == [Phase.SERVING] and ev.verdict is Status.PASS


def test_blocks_and_first_phase() -> None:
    plan = _plan()
    blocked = plan.blocks("dns:lab-aks-00000000.hcp.eastus.azmk8s.io")
    assert "k8s:version" in blocked and "http:labacr01.azurecr.io:443" in blocked
    assert plan.first_phase_broken_by("tcp:labacr01.azurecr.io:443") is Phase.MODEL_DEPLOY


def test_egress_remediation_names_the_companion_wildcard() -> None:
    plan = _plan()
    tcp = "tcp:mcr.microsoft.com:443"
    obs = _ok(plan)
    obs[tcp] = Observation(tcp, ProbeStatus.TIMEOUT, 2000.0, "", {"address": "198.51.100.8"})
    found = _by_id(evaluate(plan, obs))
    remedy = found[tcp].remediation
    assert remedy.startswith("router-install: cluster create or attach hangs")
    assert "Allow TCP 443 to mcr.microsoft.com and *.data.mcr.microsoft.com" in remedy
