"""The router's self-scaling against the strict fake API server: the right patches (the
pods/resize subresource, or the Deployment template; the scale subresource), the
PodDisruptionBudget, the status annotation, and nothing at all on a DevTest cluster."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubernetes import client

from router.config import parse_config
from router.kube import KubernetesApi
from router.scaling_config import SelfScalingConfig
from router.selfscale_kube import (
    SIZE_ANNOTATION,
    STATUS_ANNOTATION,
    KubernetesRouterTarget,
    container_requests,
)
from router.server import RouterServer
from tests.router.router_support import router_config, run

pytest.importorskip("fakekube")
NAMESPACE = "default"
LABELS = {"app": "aksflight-router"}


def _router_deployment(replicas: int = 2, cpu: str = "500m", memory: str = "512Mi") -> dict:
    amounts = {"cpu": cpu, "memory": memory}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "aksflight-router", "labels": LABELS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": LABELS},
            "template": {
                "metadata": {"labels": LABELS},
                "spec": {
                    "containers": [
                        {
                            "name": "router",
                            "image": "registry.invalid/router:1",
                            "resources": {"requests": amounts, "limits": dict(amounts)},
                        }
                    ]
                },
            },
        },
    }


def _setup(fakekube: Any, **deployment: Any) -> tuple[KubernetesApi, Any]:
    api_client = fakekube.api_client()
    client.AppsV1Api(api_client).create_namespaced_deployment(
        NAMESPACE, _router_deployment(**deployment)
    )
    return KubernetesApi(api_client), api_client


def _router_pods(fakekube: Any) -> list[dict]:
    return [
        pod
        for pod in fakekube.store.list("pods", NAMESPACE)
        if LABELS.items() <= (pod["metadata"].get("labels") or {}).items()
        and not pod["metadata"].get("deletionTimestamp")
    ]


def _writes(fakekube: Any) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fakekube.requests.writes()]


def test_state_reads_size_and_replicas_and_creates_the_disruption_budget(fakekube: Any) -> None:
    api, _ = _setup(fakekube, replicas=2, cpu="1", memory="1Gi")
    target = KubernetesRouterTarget(api, SelfScalingConfig(), NAMESPACE)
    state, room = run(target.state())
    assert (state.step, state.replicas) == (1, 2)  # 1 CPU, 1Gi is the second default size
    budget = fakekube.store.get("PodDisruptionBudget", "aksflight-router", NAMESPACE)
    assert budget["spec"] == {"selector": {"matchLabels": LABELS}, "maxUnavailable": 1}
    assert room.resize_blocker(SelfScalingConfig().sizes[2]) is None  # 4-CPU node, 1 used
    assert _writes(fakekube)[-1] == (
        "POST",
        f"/apis/policy/v1/namespaces/{NAMESPACE}/poddisruptionbudgets",
    )


def test_up_resizes_every_router_pod_in_place_without_a_rollout(fakekube: Any) -> None:
    api, _ = _setup(fakekube, replicas=2)
    target = KubernetesRouterTarget(api, SelfScalingConfig(), NAMESPACE)
    run(target.state())
    before = sorted(p["metadata"]["name"] for p in _router_pods(fakekube))
    fakekube.requests.clear()
    assert run(target.resize(1)) == "in-place"
    resizes = [r for r in fakekube.requests.writes() if r.path.endswith("/resize")]
    assert sorted(r.path for r in resizes) == [
        f"/api/v1/namespaces/{NAMESPACE}/pods/{name}/resize" for name in before
    ]
    wanted = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    assert all(
        r.body == {"spec": {"containers": [{"name": "router", "resources": wanted}]}}
        for r in resizes
    )
    pods = _router_pods(fakekube)
    assert sorted(p["metadata"]["name"] for p in pods) == before  # the same pods, no restart
    assert {container_requests(p) for p in pods} == {(1000, 2**30)}
    deployment = fakekube.store.get("Deployment", "aksflight-router", NAMESPACE)
    assert deployment["metadata"]["annotations"][SIZE_ANNOTATION] == "1"
    template = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert template["requests"] == {"cpu": "500m", "memory": "512Mi"}  # no rollout started
    state, _ = run(target.state())
    assert state.step == 1


def test_pods_started_later_at_the_template_size_are_resized_when_seen(fakekube: Any) -> None:
    api, _ = _setup(fakekube, replicas=1)
    target = KubernetesRouterTarget(api, SelfScalingConfig(), NAMESPACE)
    run(target.state())
    run(target.resize(1))
    run(target.scale(2))
    sizes = sorted(container_requests(p) for p in _router_pods(fakekube))
    assert sizes == [(500, 512 * 2**20), (1000, 2**30)]  # the new one came from the template
    run(target.reconcile(1))
    assert {container_requests(p) for p in _router_pods(fakekube)} == {(1000, 2**30)}


def test_without_pods_resize_the_template_rolls_with_no_unavailable_router(
    fakekube: Any,
) -> None:
    api, _ = _setup(fakekube, replicas=2)
    fakekube.faults.add("PATCH", "*/pods/*/resize", 404, times=5)
    target = KubernetesRouterTarget(api, SelfScalingConfig(), NAMESPACE)
    run(target.state())
    before = {p["metadata"]["name"] for p in _router_pods(fakekube)}
    assert run(target.resize(1)) == "rolling"
    deployment = fakekube.store.get("Deployment", "aksflight-router", NAMESPACE)
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    assert container["image"] == "registry.invalid/router:1"  # merged by name, not replaced
    after = _router_pods(fakekube)
    assert before.isdisjoint(p["metadata"]["name"] for p in after)  # rolled
    assert {container_requests(p) for p in after} == {(1000, 2**30)}
    fakekube.requests.clear()
    assert run(target.resize(2)) == "rolling"  # remembered: no second resize attempt
    assert not [r for r in fakekube.requests.writes() if r.path.endswith("/resize")]


def test_out_and_in_patch_the_scale_subresource_and_keep_the_budget_right(
    fakekube: Any,
) -> None:
    api, _ = _setup(fakekube, replicas=1)
    target = KubernetesRouterTarget(api, SelfScalingConfig(), NAMESPACE)
    run(target.state())
    budget = fakekube.store.get("PodDisruptionBudget", "aksflight-router", NAMESPACE)
    assert budget["spec"] == {"selector": {"matchLabels": LABELS}, "minAvailable": 1}
    fakekube.requests.clear()
    run(target.scale(3))
    scale = [r for r in fakekube.requests.writes() if r.path.endswith("/scale")]
    assert [(r.path, r.body) for r in scale] == [
        (
            f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/aksflight-router/scale",
            {"spec": {"replicas": 3}},
        )
    ]
    assert len(_router_pods(fakekube)) == 3
    budget = fakekube.store.get("PodDisruptionBudget", "aksflight-router", NAMESPACE)
    assert budget["spec"] == {"selector": {"matchLabels": LABELS}, "maxUnavailable": 1}
    run(target.scale(1))
    assert len(_router_pods(fakekube)) == 1
    budget = fakekube.store.get("PodDisruptionBudget", "aksflight-router", NAMESPACE)
    assert budget["spec"] == {"selector": {"matchLabels": LABELS}, "minAvailable": 1}


def test_room_is_allocatable_minus_requests_on_each_node(fakekube: Any) -> None:
    fakekube.controllers.add_node("small", cpu="1500m", memory="2Gi")
    api_client = fakekube.api_client()
    client.CoreV1Api(api_client).create_namespaced_pod(
        NAMESPACE,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "big-model"},
            "spec": {
                "nodeName": "node-1",
                "containers": [
                    {
                        "name": "model",
                        "image": "registry.invalid/model:1",
                        "resources": {"requests": {"cpu": "3500m", "memory": "4Gi"}},
                    }
                ],
            },
        },
    )
    api = KubernetesApi(api_client)
    client.AppsV1Api(api_client).create_namespaced_deployment(
        NAMESPACE, _router_deployment(replicas=1)
    )
    sizes = SelfScalingConfig().sizes
    node = _router_pods(fakekube)[0]["spec"]["nodeName"]
    assert node == "small"  # node-1 already runs a pod
    _, room = run(KubernetesRouterTarget(api, SelfScalingConfig(), NAMESPACE).state())
    assert room.free == {"node-1": (500, 12 * 2**30), "small": (1000, 1536 * 2**20)}
    assert room.resize_blocker(sizes[1]) is None  # +500m, +512Mi on "small"
    blocker = room.resize_blocker(sizes[2])
    assert blocker is not None and "node small cannot grow its routers in place" in blocker
    assert room.add_blocker(sizes[0]) is None
    blocker = room.add_blocker(sizes[2])
    assert blocker is not None and "no node has 2 CPU" in blocker


def _scaling_config(purpose: str, **settings: Any) -> dict[str, Any]:
    return router_config(
        [],
        cluster_purpose=purpose,
        peers={"kind": "none", "self_name": "aksflight-router-0", "namespace": NAMESPACE},
        self_scaling={
            "target": "kubernetes",
            "down_after_seconds": 0.2,
            "down_cooldown_seconds": 0,
            "refresh_seconds": 0.05,
            **settings,
        },
    )


def test_the_coordinating_router_scales_itself_down_in_place_and_records_it(
    fakekube: Any,
) -> None:
    api, _ = _setup(fakekube, replicas=2, cpu="2", memory="2Gi")

    async def scenario() -> None:
        server = RouterServer(parse_config(_scaling_config("FastProd")), cluster_api=api)
        await server.start()
        try:
            scaler = server.self_scaler
            assert scaler is not None
            for _ in range(100):
                if scaler.decisions:
                    break
                await asyncio.sleep(0.05)
            assert [(d.action, d.step_from, d.step_to) for d in scaler.decisions][:1] == [
                ("down", 2, 1)
            ]
            status = await asyncio.to_thread(_get_json, server.base_url + "/-/scaling")
            assert status["decisions"][0]["action"] == "down"
            assert "aksflight-router-0" in status["figures"]
            metrics = server.router.metrics.render().decode()
            assert 'router_self_scaling_decisions_total{action="down"}' in metrics
            assert "router_routing_time_seconds" in metrics
        finally:
            await server.stop()

    run(scenario())
    deployment = fakekube.store.get("Deployment", "aksflight-router", NAMESPACE)
    record = json.loads(deployment["metadata"]["annotations"][STATUS_ANNOTATION])
    assert record["decisions"][0]["action"] == "down"
    assert "CPU" in record["decisions"][0]["reason"]
    assert {container_requests(p) for p in _router_pods(fakekube)} != {(2000, 2 * 2**30)}
    assert any(r.path.endswith("/resize") for r in fakekube.requests.writes())


def test_nothing_happens_on_a_devtest_cluster(fakekube: Any) -> None:
    api, _ = _setup(fakekube, replicas=2, cpu="2", memory="2Gi")
    fakekube.requests.clear()

    async def scenario() -> None:
        server = RouterServer(parse_config(_scaling_config("DevTest")), cluster_api=api)
        await server.start()
        try:
            assert server.self_scaler is None
            await asyncio.sleep(0.5)  # ten refreshes' worth
            answer = await asyncio.to_thread(_get_status, server.base_url + "/-/scaling")
            assert answer == 404
        finally:
            await server.stop()

    run(scenario())
    assert _writes(fakekube) == []
    assert fakekube.store.find("poddisruptionbudgets", "aksflight-router", NAMESPACE) is None


def _get_json(url: str) -> Any:
    import httpx

    return httpx.get(url, timeout=5).json()


def _get_status(url: str) -> int:
    import httpx

    return httpx.get(url, timeout=5).status_code


def test_a_step_down_in_place_lowers_cpu_and_the_memory_request_not_the_limit(
    fakekube: Any,
) -> None:
    api, _ = _setup(fakekube, replicas=1, cpu="1", memory="1Gi")
    target = KubernetesRouterTarget(api, SelfScalingConfig(), NAMESPACE)
    run(target.state())
    assert run(target.resize(0)) == "in-place"
    (pod,) = _router_pods(fakekube)
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "500m", "memory": "1Gi"},
    }
