"""Router replicas find each other and share the load figures the autoscaler needs.

Each router publishes its own average load per service at `/-/load`. Every refresh, each
router lists its peers (Pods by label from the Kubernetes API, or a static list) and reads
theirs. The coordinator, the live router with the smallest name, sums the figures and is the
only one that scales, so several routers never fight over the replica count.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from router.config import PeersConfig, RouterConfig
from router.errors import DiscoveryError
from router.figures import RouterFigures
from router.kube import ClusterApi, pod_is_ready

log = logging.getLogger(__name__)

STALE_AFTER_REFRESHES = 3


class PeerSource(Protocol):
    async def peers(self) -> dict[str, str]:
        """name -> base URL of every router instance, this one included or not."""
        ...


class StaticPeers:
    def __init__(self, peers: dict[str, str]) -> None:
        self._peers = dict(peers)

    async def peers(self) -> dict[str, str]:
        return dict(self._peers)


class KubernetesPeers:
    """Ready router Pods by label selector, addressed by Pod IP."""

    def __init__(self, api: ClusterApi, config: PeersConfig) -> None:
        self._api = api
        self._config = config

    async def peers(self) -> dict[str, str]:
        pods = await asyncio.to_thread(
            self._api.list_pods, self._config.namespace, self._config.label_selector
        )
        found = {}
        for pod in pods:
            ip = (pod.get("status") or {}).get("podIP")
            name = (pod.get("metadata") or {}).get("name")
            if ip and name and pod_is_ready(pod):
                found[name] = f"http://{ip}:{self._config.port}"
        return found


@dataclass
class _PeerLoad:
    loads: dict[str, float]
    seen: float
    figures: RouterFigures | None = None


@dataclass
class PeerSet:
    """What this router knows about the other routers."""

    self_name: str
    refresh_seconds: float = 1.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _loads: dict[str, _PeerLoad] = field(default_factory=dict)

    def _now(self) -> float:
        return self.clock()

    def live(self) -> list[str]:
        horizon = self._now() - STALE_AFTER_REFRESHES * self.refresh_seconds
        return sorted(name for name, peer in self._loads.items() if peer.seen >= horizon)

    def is_coordinator(self) -> bool:
        return all(self.self_name <= name for name in self.live())

    def load_of(self, service: str) -> float:
        """The other live routers' average load for a service."""
        live = set(self.live())
        return sum(
            peer.loads.get(service, 0.0) for name, peer in self._loads.items() if name in live
        )

    def figures(self) -> dict[str, RouterFigures]:
        """Routing time and CPU of the other live routers (for the router's own scaling)."""
        live = set(self.live())
        return {
            name: peer.figures
            for name, peer in self._loads.items()
            if name in live and peer.figures is not None
        }

    def record(
        self, name: str, loads: dict[str, float], figures: RouterFigures | None = None
    ) -> None:
        if name != self.self_name:
            self._loads[name] = _PeerLoad(loads, self._now(), figures)

    async def _poll(self, session: aiohttp.ClientSession, name: str, url: str) -> None:
        try:
            async with session.get(url + "/-/load") as answer:
                answer.raise_for_status()
                body = await answer.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.debug("peer %s not reachable: %s", name, exc)
            return
        loads = {
            service: float(figures.get("average_load", 0.0))
            for service, figures in (body.get("services") or {}).items()
        }
        self.record(
            str(body.get("router", name)), loads, RouterFigures.from_json(body.get("figures"))
        )

    async def run(self, source: PeerSource, refresh_seconds: float) -> None:
        self.refresh_seconds = refresh_seconds
        timeout = aiohttp.ClientTimeout(total=max(refresh_seconds, 0.5))
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                try:
                    peers = await source.peers()
                except DiscoveryError as exc:
                    log.warning("peers: %s", exc)
                    peers = {}
                await asyncio.gather(
                    *(
                        self._poll(session, name, url)
                        for name, url in peers.items()
                        if name != self.self_name
                    )
                )
                await asyncio.sleep(refresh_seconds)


def build_peer_source(config: RouterConfig, api: ClusterApi | None) -> PeerSource | None:
    peers = config.peers
    if peers.kind == "static":
        return StaticPeers(peers.static)
    if peers.kind == "kubernetes":
        assert api is not None, "Kubernetes peers need a cluster API"
        return KubernetesPeers(api, peers)
    return None
