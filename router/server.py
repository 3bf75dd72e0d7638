"""Running the router: in-process (`serve`/`RouterServer`) or as a child process (`start_process`).

The server owns the background work around the HTTP front end: re-admitting replicas whose
health check passes again, reloading the configuration file when it changes (so a rotated key
takes effect without a restart), discovery, peers and the autoscalers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import IO

import aiohttp

from router import http11
from router.app import Router
from router.autoscaler import Autoscaler
from router.config import RouterConfig, load_config
from router.discovery import build_discovery, connect_cluster
from router.errors import ConfigError, RouterError
from router.fastpath import try_fast
from router.figures import FigureSampler
from router.kube import ClusterApi
from router.metrics import ScalingCollector
from router.native import select_build
from router.peers import PeerSet, build_peer_source
from router.scalers import build_scaler
from router.selfscale_kube import build_self_scaler

log = logging.getLogger(__name__)

HEALTH_INTERVAL = 0.25
GC_THRESHOLD = 20_000


def _ssl_context(config: RouterConfig) -> ssl.SSLContext | None:
    if config.tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.tls.cert_file, config.tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"tls: cannot load certificate or key: {exc}") from exc
    return context


class RouterServer:
    """The router with its listener and background tasks; start() then stop()."""

    def __init__(
        self,
        config: RouterConfig,
        config_path: Path | None = None,
        cluster_api: ClusterApi | None = None,
    ) -> None:
        self.config = config
        self.cluster_api = cluster_api or connect_cluster(config)
        self.config_path = config_path
        self.router = Router(config)
        self.port: int | None = None
        self.peers = PeerSet(config.own_name)
        self.autoscalers: dict[str, Autoscaler] = {}
        self._server: asyncio.Server | None = None
        self.connections = http11.ConnectionRegistry()
        self._tasks: list[asyncio.Task[None]] = []
        self._config_mtime = self._mtime()
        self._probe_session: aiohttp.ClientSession | None = None
        self._scaler = build_scaler(config, self.cluster_api)
        self.figures = FigureSampler()
        self.router.figures = self.figures
        self.self_scaler = build_self_scaler(config, self.cluster_api, self.peers, self.figures)
        self.router.scaling_status = self.self_scaler.status if self.self_scaler else None
        self.router.metrics.registry.register(
            ScalingCollector(self.figures.snapshot, lambda: self.self_scaler)
        )
        self._stopped = asyncio.Event()
        self._stopping = False

    def _mtime(self) -> float | None:
        if self.config_path is None:
            return None
        try:
            return self.config_path.stat().st_mtime
        except OSError:
            return None

    @property
    def base_url(self) -> str:
        scheme = "https" if self.config.tls else "http"
        return f"{scheme}://{self.config.listen.host}:{self.port}"

    async def start(self) -> None:
        ssl_context = _ssl_context(self.config)
        self._probe_session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1))
        listen = self.config.listen
        try:
            self._server = await http11.serve(
                self.router.handle,
                self.router.bad_request,
                listen.host,
                listen.port,
                ssl_context,
                fast=functools.partial(try_fast, self.router),
                registry=self.connections,
            )
        except OSError as exc:
            await self.stop()
            raise ConfigError(
                f"listen: cannot bind {listen.host}:{listen.port}: {exc.strerror}"
            ) from exc
        self.port = self._server.sockets[0].getsockname()[1]
        discovery = build_discovery(self.config, self.router, self.cluster_api)
        self._spawn(self._health_loop())
        self._spawn(self.figures.run())
        if self.self_scaler is not None:
            self._spawn(self.self_scaler.run())
        if discovery is not None:
            self._spawn(discovery.run())
        if self.config_path is not None and self.config.reload_seconds > 0:
            self._spawn(self._reload_loop())
        peer_source = build_peer_source(self.config, self.cluster_api)
        if peer_source is not None:
            self._spawn(self.peers.run(peer_source, self.config.peers.refresh_seconds))
        await self._prepare_replicas()
        self._start_autoscalers()
        if discovery is not None:
            await discovery.synced()
        self.router.ready = True
        build = select_build()
        log.info("router listening on %s; data plane: %s", self.base_url, build.reason)

    async def _prepare_replicas(self) -> None:
        if self._scaler is None:
            return
        for service in list(self.router.services.values()):
            try:
                await self._scaler.prepare(service)
            except RouterError as exc:
                log.error("replicas of %s not started: %s", service.config.name, exc)

    def _spawn(self, work: Awaitable[None]) -> None:
        self._tasks.append(asyncio.ensure_future(work))

    def _start_autoscalers(self) -> None:
        if self._scaler is None:
            return
        for name, service in self.router.services.items():
            if name in self.autoscalers:
                continue
            autoscaler = Autoscaler.for_service(
                service, self._scaler, self.config, self.peers, self.router.peer_name
            )
            if autoscaler is not None:
                self.autoscalers[name] = autoscaler
                self._spawn(autoscaler.run())

    async def stop(self) -> None:
        """Drain, then stop: no request that reached the router is lost.

        Readiness turns 503 and every answer says `connection: close` at once, while the
        router keeps serving for the drain delay so that load balancers (EndpointSlices,
        kube-proxy) stop sending; then it stops accepting, closes idle connections, and gives
        what is in flight or queued up to the grace (by default the longest scoring timeout).
        """
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        self.router.ready = False
        self.connections.drain(close_idle=False)
        delay = self.config.drain_delay
        if delay and self._server is not None:
            log.info("readiness off; still serving for %s s while load balancers notice", delay)
            await asyncio.sleep(delay)
        if self._server is not None:
            self._server.close()
        self.connections.drain()
        await self._drain(self.config.shutdown_grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1):
                    await self._server.wait_closed()
        if self._probe_session is not None:
            await self._probe_session.close()
        if self._scaler is not None:
            await self._scaler.close()
        await self.router.close()
        self._stopped.set()

    async def _drain(self, seconds: float) -> None:
        """Wait until every client connection has closed (each after its last answer)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            loads = [service.pool.load() for service in self.router.services.values()]
            if not self.connections and not any(load.in_flight or load.queued for load in loads):
                return
            await asyncio.sleep(0.02)
        log.warning("stopping with requests still in flight after %s s", seconds)

    def reload(self) -> None:
        """Re-read the configuration file; a bad file is logged and the old one kept."""
        if self.config_path is None:
            return
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            log.error("configuration not reloaded: %s", exc)
            return
        if config.listen != self.config.listen or config.tls != self.config.tls:
            log.warning("listen and tls changes take effect only after a restart")
        self.config = config
        self.router.apply_config(config)
        self._spawn(self._prepare_replicas())
        self._start_autoscalers()
        log.info("configuration reloaded from %s", self.config_path)

    async def _reload_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.reload_seconds)
            mtime = self._mtime()
            if mtime != self._config_mtime:
                self._config_mtime = mtime
                self.reload()

    async def _health_loop(self) -> None:
        """Re-admit replicas taken out of rotation once `GET /` answers 200 again."""
        assert self._probe_session is not None
        while True:
            await asyncio.sleep(HEALTH_INTERVAL)
            now = time.monotonic()
            for service in list(self.router.services.values()):
                for replica in service.pool.out_of_rotation():
                    if replica.retired_until > now:
                        continue
                    try:
                        async with self._probe_session.get(replica.url + "/") as answer:
                            healthy = answer.status == 200
                    except (aiohttp.ClientError, TimeoutError):
                        healthy = False
                    if healthy:
                        log.info("replica %s is healthy again", replica.name)
                        service.pool.put_back(replica)
                    else:
                        replica.retired_until = now + self.config.replica_retry_seconds

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


def _tune_gc() -> None:
    """Move what start-up built out of the collector's sight and collect young objects
    less often: the request path makes few reference cycles, and each collection pass
    otherwise walks every long-lived object again."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


async def _serve(config_path: Path, on_ready: Callable[[RouterServer], None] | None) -> None:
    server = RouterServer(load_config(config_path), config_path)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, server.reload)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: asyncio.ensure_future(server.stop()))
    await server.start()
    _tune_gc()
    if on_ready is not None:
        on_ready(server)
    await server.wait_stopped()


def serve(config_path: Path | str, on_ready: Callable[[RouterServer], None] | None = None) -> None:
    """Run the router in this process until SIGTERM or SIGINT (SIGHUP reloads the config).

    uvloop, where installed, runs the event loop: it cuts the CPU per request by about a third.
    """
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(Path(config_path), on_ready))
    else:
        uvloop.run(_serve(Path(config_path), on_ready))


def start_process(
    config_path: Path | str,
    python: str | None = None,
    env: Mapping[str, str] | None = None,
    stdout: int | IO[bytes] | None = None,
    stderr: int | IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `python -m router --config FILE` in its own process group (stop it by group)."""
    return subprocess.Popen(
        [python or sys.executable, "-m", "router", "--config", str(config_path)],
        env={**os.environ, **(env or {})},
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
    )


def wait_until_ready(url: str, timeout: float = 10.0, verify: ssl.SSLContext | bool = True) -> None:
    """Poll `<url>/readyz` until it answers 200; raise RouterError after `timeout` seconds."""
    import httpx

    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=1, verify=verify).status_code == 200:
                return
            last = "not ready"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.05)
    raise RouterError(f"router at {url} not ready after {timeout} s ({last})")
