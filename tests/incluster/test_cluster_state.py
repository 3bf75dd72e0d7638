"""The cluster-state collector against the fake API server, judged by `rules.cluster`:
each rule with a passing and a failing cluster, asserting which object triggered it."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from preflight.cluster_state import ClusterStateError, collect_snapshot
from rules.cluster import ServicePlan, cluster_findings
from rules.model import Status
from tests.conftest import example_config

pytestmark = pytest.mark.fakekube(nodes=2)
SERVICE = ServicePlan("iris", "models", replicas=3, cpu_cores=1.0, memory_gb=2.0)


def _statuses(findings: list[Any]) -> dict[str, Status]:
    return {f.check.id: f.status for f in findings}


def _busy_pod(kube: Any, node: str, cpu: str, memory: str) -> None:
    core = client.CoreV1Api(kube.api_client())
    core.create_namespaced_pod(
        "default",
        {
            "metadata": {"name": f"busy-{node}"},
            "spec": {
                "nodeName": node,
                "containers": [
                    {
                        "name": "c",
                        "image": "x",
                        "resources": {"requests": {"cpu": cpu, "memory": memory}},
                    }
                ],
            },
        },
    )


def test_requests_are_summed_per_node_and_pools_read_from_labels(fakekube: Any) -> None:
    core = client.CoreV1Api(fakekube.api_client())
    core.patch_node("node-2", {"metadata": {"labels": {"kubernetes.azure.com/agentpool": "gpu"}}})
    _busy_pod(fakekube, "node-1", "1500m", "4Gi")

    snapshot = collect_snapshot(fakekube.api_client(), router_namespace="azureml")

    nodes = {n.name: n for n in snapshot.nodes}
    assert nodes["node-1"].cpu_requested == pytest.approx(1.5)
    assert nodes["node-1"].memory_requested_gb == pytest.approx(4.0)
    assert nodes["node-2"].cpu_requested == 0
    assert nodes["node-2"].pool == "gpu"  # the AKS label wins over the legacy one
    assert nodes["node-1"].pool == "nodepool1"
    assert nodes["node-1"].cpu_allocatable > 0


def test_capacity_passes_then_fails_naming_the_service(fakekube: Any) -> None:
    config = example_config("lab.yaml")
    api = fakekube.api_client()
    fits = cluster_findings(collect_snapshot(api, router_namespace="azureml"), config, [SERVICE])
    assert _statuses(fits)["cluster:capacity"] is Status.PASS

    _busy_pod(fakekube, "node-1", "3500m", "1Gi")
    _busy_pod(fakekube, "node-2", "3500m", "1Gi")
    short = cluster_findings(collect_snapshot(api, router_namespace="azureml"), config, [SERVICE])

    statuses = _statuses(short)
    assert statuses["cluster:capacity"] is Status.FAIL
    assert statuses["cluster:fit:iris"] is Status.FAIL
    capacity = next(f for f in short if f.check.id == "cluster:capacity")
    assert capacity.reason.startswith("CPU 3 cores needed")


def test_an_hpa_on_the_model_deployment_is_named(fakekube: Any) -> None:
    api = fakekube.api_client()
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "models"}})
    autoscaling = client.AutoscalingV2Api(api)
    for name, target in (("other", "web"), ("iris-hpa", "iris")):
        autoscaling.create_namespaced_horizontal_pod_autoscaler(
            "models",
            {
                "metadata": {"name": name},
                "spec": {
                    "scaleTargetRef": {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": target,
                    },
                    "minReplicas": 1,
                    "maxReplicas": 3,
                },
            },
        )

    findings = cluster_findings(
        collect_snapshot(api, router_namespace="azureml"), example_config("lab.yaml"), [SERVICE]
    )

    hpa = [f for f in findings if f.check.id.startswith("cluster:hpa:")]
    assert [(f.check.id, f.status) for f in hpa] == [("cluster:hpa:models/iris-hpa", Status.FAIL)]


def test_denied_permissions_come_from_self_subject_access_reviews(fakekube: Any) -> None:
    fakekube.access.deny("watch", "pods", namespace="azureml")
    fakekube.access.deny("create", "secrets")

    snapshot = collect_snapshot(fakekube.api_client(), router_namespace="azureml")

    assert snapshot.permissions["watch pods"] is False
    assert snapshot.permissions["list pods"] is True
    findings = cluster_findings(snapshot, example_config("lab.yaml"))
    failed = sorted(f.check.id for f in findings if f.status is Status.FAIL)
    assert failed == ["cluster:rbac:create-secrets", "cluster:rbac:watch-pods"]


def test_region_and_network_plugin_from_node_labels_and_pod_cidrs(fakekube: Any) -> None:
    core = client.CoreV1Api(fakekube.api_client())
    for node in ("node-1", "node-2"):
        core.patch_node(node, {"metadata": {"labels": {"topology.kubernetes.io/region": "westus"}}})
    config = example_config("lab.yaml")  # eastus, Azure CNI; the fake's nodes have podCIDRs

    findings = cluster_findings(
        collect_snapshot(fakekube.api_client(), router_namespace="azureml"), config
    )

    by_id = {f.check.id: f for f in findings}
    assert by_id["cluster:network-plugin"].status is Status.WARN
    assert "2 of 2 nodes have spec.podCIDR" in by_id["cluster:network-plugin"].reason
    region = [f.reason for f in findings if f.check.id == "cluster:region"]
    assert region == [
        "the config says eastus, the nodes are in westus",
        "workspace in eastus, cluster in westus: token fetches cross regions",
    ]


def test_an_api_that_refuses_is_one_error(fakekube: Any) -> None:
    fakekube.faults.add("GET", "/api/v1/pods", 500)
    with pytest.raises(ClusterStateError, match="cannot list nodes and pods: HTTP 500"):
        collect_snapshot(fakekube.api_client(), router_namespace="azureml")


def test_an_hpa_on_an_already_deployed_model_service_is_named(fakekube: Any) -> None:
    """No service planned: the deployer's labelled Deployment is what the HPA fights."""
    api = fakekube.api_client()
    client.CoreV1Api(api).create_namespace({"metadata": {"name": "models"}})
    labels = {
        "app.kubernetes.io/component": "model",
        "app.kubernetes.io/managed-by": "aksflight",
        "app.kubernetes.io/instance": "iris",
    }
    client.AppsV1Api(api).create_namespaced_deployment(
        "models",
        {
            "metadata": {"name": "iris", "labels": labels},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app.kubernetes.io/instance": "iris"}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "model",
                                "image": "x",
                                "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
                            }
                        ]
                    },
                },
            },
        },
    )
    client.AutoscalingV2Api(api).create_namespaced_horizontal_pod_autoscaler(
        "models",
        {
            "metadata": {"name": "iris-hpa"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "iris"},
                "minReplicas": 1,
                "maxReplicas": 3,
            },
        },
    )

    snapshot = collect_snapshot(api, router_namespace="azureml")

    assert [
        (s.namespace, s.name, s.replicas, s.cpu_cores, s.memory_gb)
        for s in snapshot.deployed_models
    ] == [("models", "iris", 2, 0.5, 1.0)]
    findings = cluster_findings(snapshot, example_config("lab.yaml"))
    hpa = [(f.check.id, f.status) for f in findings if f.check.id.startswith("cluster:hpa:")]
    assert hpa == [("cluster:hpa:models/iris-hpa", Status.FAIL)]
