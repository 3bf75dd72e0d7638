"""Scalers change a service's replica count: a Deployment's scale subresource, or local processes.

The router scales replicas, never nodes. The local scaler is also the local target's replica
registry: each process it starts joins the service's pool once its health route answers, and
one it stops leaves the pool first and is terminated (by process group) when idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import time
from typing import TYPE_CHECKING, Protocol

import aiohttp

from router.config import RouterConfig
from router.errors import ScalerError
from router.kube import ClusterApi
from router.processes import stop_process_group

if TYPE_CHECKING:
    from router.app import Service

log = logging.getLogger(__name__)


class Scaler(Protocol):
    async def prepare(self, service: Service) -> None:
        """Bring up the initial replicas, where the scaler owns them."""
        ...

    async def get_replicas(self, service: Service) -> int: ...

    async def set_replicas(self, service: Service, replicas: int) -> None: ...

    async def close(self) -> None: ...


class KubernetesScaler:
    """Reads and patches `deployments/<name>/scale`; the Deployment defaults to the service name."""

    def __init__(self, api: ClusterApi, default_namespace: str) -> None:
        self._api = api
        self._namespace = default_namespace

    def _target(self, service: Service) -> tuple[str, str]:
        target = service.config.kubernetes
        namespace = target.namespace if target else self._namespace
        deployment = (target.deployment if target else None) or service.config.name
        return namespace, deployment

    async def prepare(self, service: Service) -> None:
        return None

    async def get_replicas(self, service: Service) -> int:
        return await asyncio.to_thread(self._api.read_scale, *self._target(service))

    async def set_replicas(self, service: Service, replicas: int) -> None:
        namespace, deployment = self._target(service)
        await asyncio.to_thread(self._api.patch_scale, namespace, deployment, replicas)

    async def close(self) -> None:
        return None


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class _Process:
    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.process = process


class LocalProcessScaler:
    """Starts and stops model-server processes on this machine for each service."""

    def __init__(self, stop_timeout: float = 10.0) -> None:
        self._processes: dict[str, list[_Process]] = {}
        self._pending: dict[str, int] = {}
        self._stop_timeout = stop_timeout
        self._background: set[asyncio.Task[None]] = set()

    async def prepare(self, service: Service) -> None:
        config = service.config
        initial = config.num_replicas or config.autoscale.min_replicas
        if config.local_process is not None and not self._processes.get(config.name):
            await self.set_replicas(service, initial)

    async def get_replicas(self, service: Service) -> int:
        name = service.config.name
        return len(self._processes.get(name, [])) + self._pending.get(name, 0)

    async def set_replicas(self, service: Service, replicas: int) -> None:
        current = await self.get_replicas(service)
        if replicas > current:
            await asyncio.gather(*(self._start(service) for _ in range(replicas - current)))
        elif replicas < current:
            running = self._processes.get(service.config.name, [])
            for _ in range(min(current - replicas, len(running))):
                victim = running.pop()
                service.pool.remove(victim.url)
                task = asyncio.ensure_future(self._retire(service, victim))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def _start(self, service: Service) -> None:
        settings = service.config.local_process
        if settings is None:
            raise ScalerError(f"service {service.config.name} has no local_process settings")
        name = service.config.name
        port = _free_port(settings.host)
        url = f"http://{settings.host}:{port}"
        command = [part.replace("{port}", str(port)) for part in settings.command]
        self._pending[name] = self._pending.get(name, 0) + 1
        try:
            try:
                process = subprocess.Popen(
                    command,
                    env={**os.environ, **settings.env, "PORT": str(port)},
                    cwd=settings.cwd,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ScalerError(f"cannot start {command[0]}: {exc.strerror}") from exc
            await self._wait_ready(
                process, url + settings.ready_path, settings.ready_timeout_seconds
            )
        finally:
            self._pending[name] -= 1
        self._processes.setdefault(name, []).append(_Process(url, process))
        service.pool.add(url)
        log.info("started replica %s of %s (pid %d)", url, name, process.pid)

    async def _wait_ready(self, process: subprocess.Popen[bytes], url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise ScalerError(f"replica process exited with code {process.returncode}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(url) as answer:
                        if answer.status == 200:
                            return
                await asyncio.sleep(0.05)
        stop_process_group(process, 1.0)
        raise ScalerError(f"replica at {url} not ready after {timeout} s")

    async def _retire(self, service: Service, victim: _Process) -> None:
        replica = next((r for r in service.pool.replicas if r.url == victim.url), None)
        while replica is not None and replica.in_flight > 0:
            await asyncio.sleep(0.05)
        await asyncio.to_thread(stop_process_group, victim.process, self._stop_timeout)
        log.info("stopped replica %s of %s", victim.url, service.config.name)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        for processes in self._processes.values():
            for entry in processes:
                await asyncio.to_thread(stop_process_group, entry.process, self._stop_timeout)
        self._processes.clear()


def build_scaler(config: RouterConfig, api: ClusterApi | None) -> Scaler | None:
    if config.scaler.kind == "kubernetes":
        assert api is not None, "the Kubernetes scaler needs a cluster API"
        return KubernetesScaler(api, config.discovery.kubernetes.namespace)
    if config.scaler.kind == "local":
        return LocalProcessScaler()
    return None
