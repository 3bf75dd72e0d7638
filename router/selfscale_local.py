"""Router processes on this machine as the self-scaling target (the local target).

Each router is a `python -m router` process on a port of its own; `endpoints` lists the ready
ones (and `endpoints.json` in the fleet's directory), the local counterpart of the router
Service's EndpointSlice: clients send only to listed routers. A router leaves the list before
it is told to stop, then drains (readiness off, serving through its drain delay, answering
what is under way), so a scale-in or a rolling resize loses no request.

A size is the number of CPU cores a router may run on (its CPU, rounded up), applied with
`sched_setaffinity`: in place on the running process, or, with `resize="rolling"`, by starting
a successor at the new size and retiring the old router once the successor is ready. Memory
sizes are not enforced on this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import aiohttp

from router.config import RouterConfig, dump_config
from router.errors import ScalerError
from router.figures import RouterFigures
from router.scaling_config import RouterSize, SelfScalingConfig
from router.selfscale import FleetState, ScalingDecision
from router.server import start_process

log = logging.getLogger(__name__)

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 90.0


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def cores_for(size: RouterSize) -> set[int]:
    """The CPUs a router of this size may use: its CPU rounded up, on this machine's CPUs."""
    available = sorted(os.sched_getaffinity(0))
    wanted = max(1, math.ceil(size.cpu_millis / 1000))
    return set(available[: min(wanted, len(available))])


@dataclass
class LocalRouter:
    name: str
    url: str
    step: int
    process: subprocess.Popen[bytes]
    config_path: Path


@dataclass
class EverythingFits:
    """This machine does not refuse a size or a process; the policy asks anyway."""

    def resize_blocker(self, size: RouterSize) -> str | None:
        return None

    def add_blocker(self, size: RouterSize) -> str | None:
        return None


@dataclass
class LocalRouterFleet:
    """Starts, resizes and retires router processes; the `RouterTarget` for this machine."""

    base: RouterConfig
    directory: Path
    settings: SelfScalingConfig = field(default_factory=SelfScalingConfig)
    resize_mode: Literal["in-place", "rolling"] = "in-place"
    drain_delay: float = 0.5
    host: str = "127.0.0.1"
    routers: list[LocalRouter] = field(default_factory=list)
    retiring: list[LocalRouter] = field(default_factory=list)
    _count: int = 0

    @property
    def endpoints(self) -> list[str]:
        return [router.url for router in self.routers]

    def _publish(self) -> None:
        path = self.directory / "endpoints.json"
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps({"routers": self.endpoints}))
        partial.replace(path)

    async def _start_router(self, step: int) -> LocalRouter:
        self._count += 1
        name = f"router-{self._count}"
        port = _free_port(self.host)
        config = self.base.model_copy(
            update={
                "listen": self.base.listen.model_copy(update={"host": self.host, "port": port}),
                "drain_delay_seconds": self.drain_delay,
                "peers": self.base.peers.model_copy(update={"self_name": name}),
            }
        )
        config_path = self.directory / f"{name}.json"
        config_path.write_text(dump_config(config))
        with (self.directory / f"{name}.log").open("ab") as log_file:
            process = start_process(config_path, stdout=subprocess.DEVNULL, stderr=log_file)
        router = LocalRouter(name, f"http://{self.host}:{port}", step, process, config_path)
        self._apply_size(router, step)
        await self._wait_ready(router)
        log.info("local router %s ready at %s (size step %d)", name, router.url, step)
        return router

    def _apply_size(self, router: LocalRouter, step: int) -> None:
        try:
            os.sched_setaffinity(router.process.pid, cores_for(self.settings.sizes[step]))
        except OSError as exc:
            raise ScalerError(f"cannot size {router.name}: {exc.strerror}") from exc
        router.step = step

    async def _wait_ready(self, router: LocalRouter) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            while loop.time() < deadline:
                if router.process.poll() is not None:
                    raise ScalerError(f"{router.name} exited with {router.process.returncode}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(router.url + "/readyz") as answer:
                        if answer.status == 200:
                            return
                await asyncio.sleep(0.05)
        await self._stop(router)
        raise ScalerError(f"{router.name} not ready after {READY_TIMEOUT} s")

    async def start(self, replicas: int, step: int = 0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        started = await asyncio.gather(*(self._start_router(step) for _ in range(replicas)))
        self.routers.extend(started)
        self._publish()

    async def _retire(self, router: LocalRouter) -> None:
        """Unlist first, then SIGTERM: the router drains and exits on its own."""
        self.routers.remove(router)
        self._publish()
        self.retiring.append(router)
        try:
            await self._stop(router)
        finally:
            self.retiring.remove(router)
        log.info("local router %s drained and stopped", router.name)

    async def _stop(self, router: LocalRouter) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(router.process.pid, signal.SIGTERM)
        try:
            await asyncio.to_thread(router.process.wait, STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(router.process.pid, signal.SIGKILL)
            await asyncio.to_thread(router.process.wait)

    # -- RouterTarget -----------------------------------------------------------------------

    async def state(self) -> tuple[FleetState, EverythingFits]:
        step = max((router.step for router in self.routers), default=0)
        return FleetState(step, len(self.routers)), EverythingFits()

    async def resize(self, step: int) -> str:
        if self.resize_mode == "in-place":
            for router in self.routers:
                self._apply_size(router, step)
            return "in-place"
        for old in list(self.routers):  # one at a time, the successor ready first
            successor = await self._start_router(step)
            self.routers.append(successor)
            self._publish()
            await self._retire(old)
        return "rolling"

    async def scale(self, replicas: int) -> None:
        step = max((router.step for router in self.routers), default=0)
        while len(self.routers) < replicas:
            self.routers.append(await self._start_router(step))
            self._publish()
        while len(self.routers) > replicas:
            await self._retire(self.routers[-1])

    async def reconcile(self, step: int) -> None:
        return None

    async def record(self, decisions: list[ScalingDecision], figures: dict[str, object]) -> None:
        status = {"decisions": [d.to_json() for d in decisions[-10:]], "figures": figures}
        (self.directory / "scaling.json").write_text(json.dumps(status))

    async def figures(self) -> dict[str, RouterFigures]:
        """Each listed router's routing time and CPU, read from its /-/load."""
        found: dict[str, RouterFigures] = {}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            for router in list(self.routers):
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                    async with session.get(router.url + "/-/load") as answer:
                        figures = RouterFigures.from_json((await answer.json()).get("figures"))
                    if figures is not None:
                        found[router.name] = figures
        return found

    async def close(self) -> None:
        await asyncio.gather(*(self._retire(router) for router in list(self.routers)))
