"""The pod-network checks a probe pod runs: pod to pod across node pools.

Each probe pod listens on the router's port and the model server's port. It finds the
other probe pods of its run through the API server (as the router finds its peers:
`list pods` by label), connects to every one of them on both ports, and then stays up
until every peer has connected to it too (or the linger time ends), so a fast pod does
not exit before a slow one has tested it.

    peer:router       every probe pod on the router port (router peers, multi-pod)
    peer:model-pods   every probe pod on the model port (the router reaching model pods)

Evidence: port, expected (probe pods in the run), found (with an address), and peers:
pod → {pool, node, address, status, connect_ms}.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from preflight._net import describe, network_status
from preflight.kube import _failure
from rules.model import Check, Observation, ProbeStatus

ROUTER_PORT = 8080
MODEL_PORT = 5001
PORTS_BY_CHECK: Mapping[str, str] = {"peer:router": "router", "peer:model-pods": "model"}


@dataclass(frozen=True, slots=True)
class Peer:
    pod: str
    address: str
    pool: str = ""
    node: str = ""


@dataclass
class PeerListener:
    """Accepts connections on the given ports and remembers who connected on which."""

    address: str
    ports: Sequence[int]
    seen: dict[int, set[str]] = field(default_factory=dict)
    _servers: list[asyncio.Server] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> PeerListener:
        for port in self.ports:
            self.seen.setdefault(port, set())
            server = await asyncio.start_server(
                self._handler(port), self.address, port, reuse_address=True
            )
            self._servers.append(server)
        return self

    def _handler(self, port: int) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("peername")
            if peer:
                self.seen[port].add(str(peer[0]))
                self._changed.set()
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

        return handle

    async def wait_for(self, addresses: set[str], timeout: float) -> bool:
        """Until each of `addresses` has connected on every port, or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while not all(addresses <= self.seen[p] for p in self.ports):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return False
        return True

    async def close(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()
        self._servers.clear()


class DiscoveryError(Exception):
    """The peers could not be listed; `status` is what the API answer stands for."""

    def __init__(self, status: ProbeStatus, detail: str) -> None:
        self.status = status
        super().__init__(detail)


async def discover_peers(
    api: Any, namespace: str, selector: str, expected: int, timeout: float
) -> list[Peer]:
    """The run's probe pods that have an address, waiting (bounded) until `expected` do.
    `api` is a `kubernetes.aio.client.ApiClient`."""
    from kubernetes.aio import client as k8s

    core: Any = k8s.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    peers: list[Peer] = []
    while True:
        try:
            listed = await core.list_namespaced_pod(
                namespace, label_selector=selector, _request_timeout=max(timeout, 1.0)
            )
        except Exception as exc:  # the client raises aiohttp, ssl and its own errors
            status, _ = _failure(exc)
            raise DiscoveryError(status, f"cannot list the probe pods: {describe(exc)}") from exc
        peers = sorted(
            (
                Peer(
                    pod.metadata.name,
                    pod.status.pod_ip,
                    (pod.metadata.labels or {}).get("aksflight.io/pool", ""),
                    pod.spec.node_name or "",
                )
                for pod in listed.items
                if pod.status and pod.status.pod_ip
            ),
            key=lambda p: p.pod,
        )
        if len(peers) >= expected or time.monotonic() >= deadline:
            return peers
        await asyncio.sleep(0.5)


async def _connect(address: str, port: int, timeout: float) -> tuple[ProbeStatus, float, str]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(address, port)
    except TimeoutError:
        return ProbeStatus.TIMEOUT, (time.perf_counter() - started) * 1000, "no answer"
    except OSError as exc:
        return network_status(exc), (time.perf_counter() - started) * 1000, describe(exc)
    elapsed = (time.perf_counter() - started) * 1000
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ProbeStatus.OK, elapsed, ""


# Worst first: the status a peer check reports when its peers disagree.
_SEVERITY = (ProbeStatus.TIMEOUT, ProbeStatus.UNREACHABLE, ProbeStatus.REFUSED, ProbeStatus.ERROR)


async def probe_peers(
    check: Check, peers: Sequence[Peer], port: int, expected: int, timeout: float
) -> Observation:
    """Connect to every peer on `port`; OK only when every one answered."""
    started = time.perf_counter()
    results = await asyncio.gather(*(_connect(p.address, port, timeout) for p in peers))
    evidence: dict[str, Any] = {
        "port": port,
        "expected": expected,
        "found": len(peers),
        "peers": {
            peer.pod: {
                "pool": peer.pool,
                "node": peer.node,
                "address": peer.address,
                "status": status.value,
                "connect_ms": round(ms, 3),
            }
            for peer, (status, ms, _) in zip(peers, results, strict=True)
        },
    }
    failed = [(p, r) for p, r in zip(peers, results, strict=True) if r[0] is not ProbeStatus.OK]
    duration = (time.perf_counter() - started) * 1000
    if not peers:
        return Observation(
            check.id, ProbeStatus.ERROR, duration, "no probe pod had an address", evidence
        )
    if failed:
        worst = min((r[0] for _, r in failed), key=_rank)
        names = ", ".join(
            f"{p.pod} ({p.pool or p.node or p.address}) {r[0].value}" for p, r in failed
        )
        return Observation(check.id, worst, duration, f"port {port}: {names}", evidence)
    detail = f"{len(peers)} of {expected} probe pods answered on port {port}"
    return Observation(check.id, ProbeStatus.OK, duration, detail, evidence)


def _rank(status: ProbeStatus) -> int:
    return _SEVERITY.index(status) if status in _SEVERITY else len(_SEVERITY)
