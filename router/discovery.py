"""Replica discovery: static lists from the configuration, or a watch on EndpointSlices.

The Kubernetes watch runs in a thread (the official client blocks) and hands each event to the
event loop, so a replica that becomes ready, or goes away, is in the pool within milliseconds
of the API server reporting it. A watch that expires (410) lists again; a failed one backs off.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from typing import TYPE_CHECKING, Protocol

from router.config import KubernetesDiscoveryConfig, RouterConfig
from router.errors import DiscoveryError
from router.kube import ClusterApi, KubernetesApi, Object, WatchExpired, ready_addresses

if TYPE_CHECKING:
    from router.app import Router

log = logging.getLogger(__name__)

WATCH_TIMEOUT_SECONDS = 30
RETRY_SECONDS = 1.0


class Discovery(Protocol):
    async def run(self) -> None: ...

    async def synced(self) -> None: ...


class KubernetesDiscovery:
    """Keeps every service's pool equal to the ready endpoints of its labelled EndpointSlices."""

    def __init__(self, api: ClusterApi, config: KubernetesDiscoveryConfig, router: Router) -> None:
        self._api = api
        self._config = config
        self._router = router
        self._slices: dict[str, Object] = {}
        self._synced = asyncio.Event()
        self._stopping = threading.Event()

    async def synced(self) -> None:
        await self._synced.wait()

    def _key(self, endpoint_slice: Object) -> str:
        metadata = endpoint_slice.get("metadata") or {}
        return f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"

    def _apply(self) -> None:
        """Recompute every service's replica list from the slices seen so far."""
        label = self._config.service_label
        by_service: dict[str, list[str]] = defaultdict(list)
        for endpoint_slice in self._slices.values():
            service = ((endpoint_slice.get("metadata") or {}).get("labels") or {}).get(label)
            if service:
                by_service[service].extend(ready_addresses(endpoint_slice, self._config.port_name))
        for name, service in self._router.services.items():
            if service.config.replicas:
                continue
            service.pool.set_replicas(by_service.get(name, []))

    def _on_list(self, items: list[Object]) -> None:
        self._slices = {self._key(item): item for item in items}
        self._apply()
        self._synced.set()

    def _on_event(self, kind: str, endpoint_slice: Object) -> None:
        if kind == "BOOKMARK":
            return
        key = self._key(endpoint_slice)
        if kind == "DELETED":
            self._slices.pop(key, None)
        else:
            self._slices[key] = endpoint_slice
        self._apply()

    def _watch_forever(self, loop: asyncio.AbstractEventLoop) -> None:
        namespace = self._config.namespace
        selector = self._config.service_label
        version: str | None = None
        while not self._stopping.is_set():
            try:
                if version is None:
                    items, version = self._api.list_endpoint_slices(namespace, selector)
                    loop.call_soon_threadsafe(self._on_list, items)
                for kind, endpoint_slice in self._api.watch_endpoint_slices(
                    namespace, selector, version, WATCH_TIMEOUT_SECONDS
                ):
                    if self._stopping.is_set():
                        return
                    version = (endpoint_slice.get("metadata") or {}).get("resourceVersion", version)
                    loop.call_soon_threadsafe(self._on_event, kind, endpoint_slice)
            except WatchExpired:
                version = None
            except DiscoveryError as exc:
                log.warning("discovery: %s; retrying in %s s", exc, RETRY_SECONDS)
                version = None
                self._stopping.wait(RETRY_SECONDS)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        thread = threading.Thread(
            target=self._watch_forever, args=(loop,), name="discovery", daemon=True
        )
        thread.start()
        try:
            await asyncio.Event().wait()
        finally:
            self._stopping.set()
            self._api.stop()


def build_discovery(
    config: RouterConfig, router: Router, api: ClusterApi | None
) -> KubernetesDiscovery | None:
    """None for static discovery: the configuration's replica lists are all there is."""
    if config.discovery.kind == "static":
        return None
    assert api is not None, "Kubernetes discovery needs a cluster API"
    return KubernetesDiscovery(api, config.discovery.kubernetes, router)


def connect_cluster(config: RouterConfig) -> ClusterApi | None:
    """One API client for discovery, peers and the scaler, when any of them uses Kubernetes."""
    uses = (
        config.discovery.kind == "kubernetes"
        or config.peers.kind == "kubernetes"
        or config.scaler.kind == "kubernetes"
        or (config.self_scaling.enabled and config.self_scaling.target == "kubernetes")
    )
    if not uses:
        return None
    settings = config.discovery.kubernetes
    return KubernetesApi.connect(settings.in_cluster, settings.kubeconfig)
