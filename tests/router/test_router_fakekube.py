"""Discovery, scaling and peers against the strict fake Kubernetes API server, end to end.

The fake's kubelet gives pods loopback addresses (127.0.0.2, .3, ...), where real test backends
listen, so the router routes to what the API server says exists, and to nothing else.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
from kubernetes import client

from router.config import parse_config
from router.kube import KubernetesApi
from router.peers import KubernetesPeers
from router.server import RouterServer
from tests.router.router_support import Backend, router_config, run

fakekube_module = pytest.importorskip("fakekube")
NAMESPACE = "default"


def _port_free_on(hosts: list[str]) -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = int(probe.getsockname()[1])
        try:
            for host in hosts[1:]:
                with socket.socket() as other:
                    other.bind((host, port))
        except OSError:
            continue
        return port
    raise AssertionError("no common free port")


@asynccontextmanager
async def _backend_on(host: str, port: int) -> AsyncIterator[Backend]:
    from aiohttp import web

    state = Backend()
    app = web.Application()
    app.router.add_route("*", "/score", state.score)
    app.router.add_get("/", state.health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    state.url = f"http://{host}:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


def _deployment(name: str, port: int, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "model",
                            "image": "registry.invalid/model:1",
                            "ports": [{"name": "http", "containerPort": port}],
                        }
                    ]
                },
            },
        },
    }


def _service(name: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"app": name},
            "ports": [{"name": "http", "port": 80, "targetPort": port}],
        },
    }


async def _until(predicate: Any, timeout: float = 2.0) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not predicate():
        assert loop.time() - started < timeout, "not seen within the deadline"
        await asyncio.sleep(0.01)
    return loop.time() - started


def test_router_discovers_scales_and_routes_through_the_api(fakekube: Any) -> None:
    addresses = (f"127.0.0.{n}" for n in itertools.count(2))
    fakekube.controllers.kubelet.pod_ip_allocator = lambda pod: next(addresses)
    hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    port = _port_free_on(hosts)
    api_client = fakekube.api_client()
    client.AppsV1Api(api_client).create_namespaced_deployment(
        NAMESPACE, _deployment("iris", port, 2)
    )
    client.CoreV1Api(api_client).create_namespaced_service(NAMESPACE, _service("iris", port))

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            backends = [await stack.enter_async_context(_backend_on(h, port)) for h in hosts]
            config = router_config(
                [{"name": "iris", "replica_max_concurrent_requests": 4}],
                discovery={"kind": "kubernetes", "kubernetes": {"namespace": NAMESPACE}},
                scaler={"kind": "kubernetes"},
            )
            server = RouterServer(parse_config(config), cluster_api=KubernetesApi(api_client))
            await server.start()
            try:
                service = server.router.services["iris"]
                pool = service.pool
                await _until(lambda: len(pool.replicas) == 2)
                assert sorted(r.url for r in pool.replicas) == [b.url for b in backends[:2]]
                async with httpx.AsyncClient(base_url=server.base_url) as http:
                    answers = await asyncio.gather(
                        *(http.post("/api/v1/service/iris/score", content=b"{}") for _ in range(8))
                    )
                assert {a.status_code for a in answers} == {200}
                assert {a.json()["backend"] for a in answers} == {b.url for b in backends[:2]}

                scaler = server._scaler
                assert scaler is not None
                assert await scaler.get_replicas(service) == 2
                await scaler.set_replicas(service, 3)
                seen = await _until(lambda: len(pool.replicas) == 3)
                assert seen < 1.0
                assert backends[2].url in {r.url for r in pool.replicas}
                scale = client.AppsV1Api(api_client).read_namespaced_deployment_scale(
                    "iris", NAMESPACE
                )
                assert scale.spec.replicas == 3

                await scaler.set_replicas(service, 1)
                await _until(lambda: len(pool.replicas) == 1)
            finally:
                await server.stop()

    run(scenario())


def test_router_peers_are_the_ready_router_pods(fakekube: Any) -> None:
    api_client = fakekube.api_client()
    core = client.CoreV1Api(api_client)
    for name in ("router-a", "router-b"):
        core.create_namespaced_pod(
            NAMESPACE,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "labels": {"app": "aksflight-router"}},
                "spec": {"containers": [{"name": "router", "image": "registry.invalid/r:1"}]},
            },
        )
    config = parse_config({"peers": {"kind": "kubernetes", "port": 8080}}).peers
    peers = run(KubernetesPeers(KubernetesApi(api_client), config).peers())
    assert sorted(peers) == ["router-a", "router-b"]
    assert all(url.startswith("http://10.") and url.endswith(":8080") for url in peers.values())


def test_scale_of_a_missing_deployment_is_a_scaler_error(fakekube: Any) -> None:
    from router.errors import ScalerError

    api = KubernetesApi(fakekube.api_client())
    with pytest.raises(ScalerError, match="404"):
        api.read_scale(NAMESPACE, "absent")
    with pytest.raises(ScalerError, match="404"):
        api.patch_scale(NAMESPACE, "absent", 2)


def test_router_connects_with_a_kubeconfig(fakekube: Any) -> None:
    config = router_config(
        [{"name": "absent"}],
        discovery={
            "kind": "kubernetes",
            "kubernetes": {"namespace": NAMESPACE, "kubeconfig": str(fakekube.kubeconfig_path)},
        },
    )

    async def scenario() -> None:
        server = RouterServer(parse_config(config))
        await server.start()
        try:
            assert server.router.ready
            assert server.router.services["absent"].pool.replicas == []
        finally:
            await server.stop()

    run(scenario())
    listed = [r for r in fakekube.requests.records if "endpointslices" in r.path]
    assert listed, "the router never asked the API server for EndpointSlices"
