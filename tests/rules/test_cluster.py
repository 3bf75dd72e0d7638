"""Cluster-state rules: a passing and a failing fixture each, asserting the triggering object."""

from __future__ import annotations

import pytest

from rules.cluster import (
    ClusterSnapshot,
    HpaInfo,
    NodeInfo,
    ServicePlan,
    capacity_findings,
    cluster_findings,
    hpa_findings,
    model_limit_findings,
    network_plugin_finding,
    rbac_findings,
    region_finding,
)
from rules.model import Status
from tests.conftest import example_config

NODES = (
    NodeInfo(
        "aks-pool1-0",
        "pool1",
        2.0,
        8.0,
        cpu_requested=0.5,
        memory_requested_gb=2.0,
        region="eastus",
    ),
    NodeInfo(
        "aks-pool1-1",
        "pool1",
        2.0,
        8.0,
        cpu_requested=1.5,
        memory_requested_gb=6.0,
        region="eastus",
    ),
)
SERVICE = ServicePlan("sentiment", "default", replicas=3, cpu_cores=0.5, memory_gb=1.0)


def _ids(findings: list) -> dict[str, Status]:  # type: ignore[type-arg]
    return {f.check.id: f.status for f in findings}


def test_hpa_on_a_model_deployment_fails_and_names_it() -> None:
    snapshot = ClusterSnapshot(
        NODES,
        hpas=(
            HpaInfo("default", "sentiment-hpa", "Deployment", "sentiment"),
            HpaInfo("default", "web-hpa", "Deployment", "web"),
            HpaInfo("other", "sentiment-hpa", "Deployment", "sentiment"),
        ),
    )
    findings = hpa_findings(snapshot, [SERVICE])
    assert _ids(findings) == {"cluster:hpa:default/sentiment-hpa": Status.FAIL}
    assert "sentiment" in findings[0].reason


def test_no_hpa_passes() -> None:
    assert hpa_findings(ClusterSnapshot(NODES), [SERVICE]) == []


def test_capacity() -> None:
    ok = capacity_findings(ClusterSnapshot(NODES), [SERVICE], "FastProd")
    assert _ids(ok) == {"cluster:capacity": Status.PASS}
    big = ServicePlan("big", "default", replicas=4, cpu_cores=1.0, memory_gb=1.0)
    short = capacity_findings(ClusterSnapshot(NODES), [SERVICE, big], "FastProd")
    assert _ids(short)["cluster:capacity"] is Status.FAIL
    assert "CPU 5.5 cores needed, 2 free" in short[0].reason
    huge = ServicePlan("huge", "default", replicas=1, cpu_cores=1.6, memory_gb=1.0)
    found = _ids(capacity_findings(ClusterSnapshot(NODES), [huge], "FastProd"))
    assert found == {"cluster:capacity": Status.PASS, "cluster:fit:huge": Status.FAIL}


def test_devtest_warns() -> None:
    found = _ids(capacity_findings(ClusterSnapshot(NODES), [SERVICE], "DevTest"))
    assert found["cluster:devtest"] is Status.WARN


@pytest.mark.parametrize(
    ("cidrs", "plugin", "status"),
    [
        ((None, None), "azure", Status.PASS),
        (("10.244.0.0/24", "10.244.1.0/24"), "kubenet", Status.PASS),
        (("10.244.0.0/24", "10.244.1.0/24"), "azure", Status.WARN),
    ],
)
def test_network_plugin(cidrs: tuple[str | None, ...], plugin: str, status: Status) -> None:
    nodes = tuple(NodeInfo(f"n{i}", "p", 2, 8, pod_cidr=c) for i, c in enumerate(cidrs))
    config = example_config("key-auth-auto-domain.yaml")
    config = config.model_copy(
        update={"cluster": config.cluster.model_copy(update={"network_plugin": plugin})}
    )
    found = network_plugin_finding(ClusterSnapshot(nodes), config)
    assert _ids(found) == {"cluster:network-plugin": status}


def test_region() -> None:
    assert _ids(
        region_finding(ClusterSnapshot(NODES), example_config("key-auth-auto-domain.yaml"))
    ) == {"cluster:region": Status.PASS}
    gov = example_config("usgov-workspace.yaml")  # workspace in usgovarizona
    nodes = (NodeInfo("n", "p", 2, 8, region="usgovvirginia"),)
    found = region_finding(ClusterSnapshot(nodes), gov)
    assert _ids(found) == {"cluster:region": Status.WARN}
    assert "usgovarizona" in found[0].reason


def test_model_limit() -> None:
    assert model_limit_findings([SERVICE]) == []
    many = ServicePlan("many", "default", 1, 0.1, 0.5, models=1001)
    assert _ids(model_limit_findings([many])) == {"cluster:model-limit:many": Status.FAIL}


def test_rbac() -> None:
    snapshot = ClusterSnapshot(NODES, permissions={"list pods": True, "watch pods": False})
    assert _ids(rbac_findings(snapshot)) == {
        "cluster:rbac:list-pods": Status.PASS,
        "cluster:rbac:watch-pods": Status.FAIL,
    }


def test_all_rules_together() -> None:
    snapshot = ClusterSnapshot(NODES, hpas=(HpaInfo("default", "h", "Deployment", "sentiment"),))
    found = _ids(cluster_findings(snapshot, example_config("key-auth-auto-domain.yaml"), [SERVICE]))
    assert found == {
        "cluster:network-plugin": Status.PASS,
        "cluster:region": Status.PASS,
        "cluster:capacity": Status.PASS,
        "cluster:hpa:default/h": Status.FAIL,
    }
