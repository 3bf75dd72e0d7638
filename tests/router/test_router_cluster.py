"""Discovery, peers and scalers through the injectable cluster seam; local processes for real."""

from __future__ import annotations

import asyncio
import queue
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from router.config import PeersConfig, ServiceConfig
from router.errors import DiscoveryError, ScalerError
from router.kube import Object, WatchExpired, ready_addresses
from router.peers import KubernetesPeers
from router.scalers import KubernetesScaler
from tests.router.router_support import backend, router, router_config, run

LABEL = "kubernetes.io/service-name"


def _slice(name: str, service: str, port: int, endpoints: list[tuple[str, bool]]) -> Object:
    return {
        "metadata": {"name": name, "namespace": "ml", "labels": {LABEL: service}},
        "ports": [{"name": "http", "port": port}],
        "endpoints": [
            {"addresses": [address], "conditions": {"ready": ready}} for address, ready in endpoints
        ],
    }


class FakeCluster:
    """Implements router.kube.ClusterApi in memory; watch events are fed by the test."""

    def __init__(self, slices: list[Object]) -> None:
        self.slices = slices
        self.events: queue.Queue[tuple[str, Object] | Exception | None] = queue.Queue()
        self.lists = 0
        self.pods: list[Object] = []
        self.scale: dict[tuple[str, str], int] = {}
        self.patches: list[tuple[str, str, int]] = []
        self._stopped = threading.Event()

    def list_endpoint_slices(self, namespace: str, label_selector: str) -> tuple[list[Object], str]:
        assert (namespace, label_selector) == ("ml", LABEL)
        self.lists += 1
        return list(self.slices), str(self.lists)

    def watch_endpoint_slices(
        self, namespace: str, label_selector: str, resource_version: str, timeout_seconds: int
    ) -> Iterator[tuple[str, Object]]:
        while not self._stopped.is_set():
            try:
                item = self.events.get(timeout=0.05)
            except queue.Empty:
                continue
            if item is None:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    def list_pods(self, namespace: str, label_selector: str) -> list[Object]:
        return list(self.pods)

    def read_scale(self, namespace: str, deployment: str) -> int:
        if (namespace, deployment) not in self.scale:
            raise ScalerError(f"read scale of {deployment}: 404 Not Found")
        return self.scale[(namespace, deployment)]

    def patch_scale(self, namespace: str, deployment: str, replicas: int) -> None:
        self.patches.append((namespace, deployment, replicas))
        self.scale[(namespace, deployment)] = replicas

    def stop(self) -> None:
        self._stopped.set()


def test_ready_addresses_skip_not_ready_and_terminating_endpoints() -> None:
    endpoint_slice = _slice("s", "m", 5001, [("10.0.0.1", True), ("10.0.0.2", False)])
    endpoint_slice["endpoints"].append(
        {"addresses": ["fd00::3"], "conditions": {"ready": True, "terminating": True}}
    )
    endpoint_slice["endpoints"].append({"addresses": ["fd00::4"], "conditions": {}})
    assert ready_addresses(endpoint_slice, None) == [
        "http://10.0.0.1:5001",
        "http://[fd00::4]:5001",
    ]
    assert ready_addresses(endpoint_slice, "grpc") == []


async def _until(predicate: Any, timeout: float = 1.0) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not predicate():
        assert loop.time() - started < timeout, "not seen within the deadline"
        await asyncio.sleep(0.01)
    return loop.time() - started


def test_watch_adds_and_removes_replicas_within_a_second_and_routes_to_them() -> None:
    async def scenario() -> None:
        async with backend() as first, backend() as second:
            port_1 = int(first.url.rsplit(":", 1)[1])
            port_2 = int(second.url.rsplit(":", 1)[1])
            cluster = FakeCluster([_slice("m-a", "m", port_1, [("127.0.0.1", True)])])
            config = router_config(
                [{"name": "m"}],
                discovery={"kind": "kubernetes", "kubernetes": {"namespace": "ml"}},
            )
            from router.config import parse_config
            from router.server import RouterServer

            server = RouterServer(parse_config(config), cluster_api=cluster)
            await server.start()
            try:
                pool = server.router.services["m"].pool
                assert [r.url for r in pool.replicas] == [first.url]
                async with httpx.AsyncClient(base_url=server.base_url) as client:
                    answer = await client.post("/api/v1/service/m/score", content=b"{}")
                    assert answer.json()["backend"] == first.url
                    cluster.events.put(("ADDED", _slice("m-b", "m", port_2, [("127.0.0.1", True)])))
                    seen = await _until(lambda: len(pool.replicas) == 2)
                    assert seen < 1.0
                    cluster.events.put(
                        ("MODIFIED", _slice("m-a", "m", port_1, [("127.0.0.1", False)]))
                    )
                    await _until(lambda: [r.url for r in pool.replicas] == [second.url])
                    answer = await client.post("/api/v1/service/m/score", content=b"{}")
                    assert answer.json()["backend"] == second.url
                    cluster.events.put(WatchExpired("expired"))
                    await _until(lambda: cluster.lists == 2)
                    assert [r.url for r in pool.replicas] == [first.url]  # relisted: m-a again
                    cluster.events.put(("DELETED", _slice("m-a", "m", port_1, [])))
                    await _until(lambda: pool.replicas == [])
                    gone = await client.post("/api/v1/service/m/score", content=b"{}")
                    assert gone.status_code == 503
            finally:
                await server.stop()

    run(scenario())


def test_discovery_survives_api_errors() -> None:
    async def scenario() -> None:
        cluster = FakeCluster([])
        from router.config import parse_config
        from router.server import RouterServer

        config = router_config(
            [{"name": "m"}], discovery={"kind": "kubernetes", "kubernetes": {"namespace": "ml"}}
        )
        server = RouterServer(parse_config(config), cluster_api=cluster)
        await server.start()
        try:
            cluster.events.put(DiscoveryError("watch EndpointSlices: 500 Internal Server Error"))
            cluster.slices = [_slice("m-a", "m", 5001, [("127.0.0.1", True)])]
            pool = server.router.services["m"].pool
            await _until(lambda: len(pool.replicas) == 1, timeout=3)
        finally:
            await server.stop()

    run(scenario())


def test_kubernetes_peers_are_ready_router_pods() -> None:
    cluster = FakeCluster([])
    cluster.pods = [
        {
            "metadata": {"name": "router-a"},
            "status": {"podIP": "10.1.0.1", "conditions": [{"type": "Ready", "status": "True"}]},
        },
        {
            "metadata": {"name": "router-b"},
            "status": {"podIP": "10.1.0.2", "conditions": [{"type": "Ready", "status": "False"}]},
        },
        {
            "metadata": {"name": "router-c"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        },
    ]
    peers = KubernetesPeers(cluster, PeersConfig(kind="kubernetes", port=8080))
    assert run(peers.peers()) == {"router-a": "http://10.1.0.1:8080"}


def test_routers_find_each_other_share_load_and_agree_on_one_coordinator() -> None:
    async def scenario() -> None:
        async with backend() as model:
            services = [{"name": "m", "replicas": [model.url]}]
            config_b = router_config(
                services, peers={"kind": "static", "self_name": "router-b", "refresh_seconds": 0.1}
            )
            async with router(config_b) as b:
                config_a = router_config(
                    services,
                    peers={
                        "kind": "static",
                        "self_name": "router-a",
                        "refresh_seconds": 0.1,
                        "static": {"router-b": b.base_url},
                    },
                )
                async with router(config_a) as a:
                    b.peers._loads.clear()
                    await _until(lambda: a.peers.live() == ["router-b"], timeout=2)
                    b.router.services["m"].extra["average_load"] = 2.5
                    await _until(lambda: a.peers.load_of("m") == 2.5, timeout=2)
                    assert a.peers.is_coordinator()
                    b.peers.record("router-a", {})
                    assert not b.peers.is_coordinator()

    run(scenario())


def _service(name: str, **extra: Any) -> Any:
    from router.app import Service
    from router.auth import AllowAll
    from router.pool import ReplicaPool

    return Service(ServiceConfig(name=name, **extra), ReplicaPool(), AllowAll())


def test_kubernetes_scaler_uses_the_deployment_scale_subresource() -> None:
    cluster = FakeCluster([])
    cluster.scale[("ml", "iris-dep")] = 2
    cluster.scale[("default", "plain")] = 1
    scaler = KubernetesScaler(cluster, "default")
    named = _service("iris", kubernetes={"namespace": "ml", "deployment": "iris-dep"})
    assert run(scaler.get_replicas(named)) == 2
    run(scaler.set_replicas(named, 5))
    assert cluster.patches == [("ml", "iris-dep", 5)]
    assert run(scaler.get_replicas(_service("plain"))) == 1
    with pytest.raises(ScalerError, match="404"):
        run(scaler.get_replicas(_service("missing")))


REPLICA_SCRIPT = """
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = json.dumps({"port": self.server.server_address[1]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = _answer
    def log_message(self, *args):
        pass

ThreadingHTTPServer.allow_reuse_address = True
server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
server.serve_forever()
"""


@pytest.mark.slow
def test_local_process_scaler_starts_registers_and_stops_replicas(tmp_path: Path) -> None:
    script = tmp_path / "replica.py"
    script.write_text(REPLICA_SCRIPT)

    async def scenario() -> None:
        config = router_config(
            [
                {
                    "name": "local",
                    "num_replicas": 2,
                    "local_process": {"command": [sys.executable, str(script), "{port}"]},
                }
            ],
            scaler={"kind": "local"},
        )
        async with router(config) as server:
            service = server.router.services["local"]
            assert len(service.pool.replicas) == 2
            scaler = server._scaler
            assert scaler is not None
            processes = [entry.process for entry in scaler._processes["local"]]  # type: ignore[attr-defined]
            async with httpx.AsyncClient(base_url=server.base_url) as client:
                ports = {
                    (await client.post("/api/v1/service/local/score", content=b"{}")).json()["port"]
                    for _ in range(4)
                }
                assert ports == {int(r.url.rsplit(":", 1)[1]) for r in service.pool.replicas}
            await scaler.set_replicas(service, 1)
            assert len(service.pool.replicas) == 1
            await _until(lambda: processes[1].poll() is not None, timeout=5)
            assert processes[0].poll() is None
            assert await scaler.get_replicas(service) == 1
        assert processes[0].poll() is not None

    run(scenario())
