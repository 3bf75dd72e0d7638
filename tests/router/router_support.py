"""Shared pieces for the router tests: a real test backend and a real router, on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from router.config import parse_config
from router.server import RouterServer

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    """Run one test's coroutine on a fresh event loop (no asyncio plugin needed)."""
    return asyncio.run(_as_coroutine(coro))


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


@dataclass
class Backend:
    """A model-server stand-in: /score echoes, can sleep, stream, or die; counts requests."""

    url: str = ""
    hits: int = 0
    concurrent: int = 0
    max_concurrent: int = 0
    seen_headers: list[dict[str, str]] = field(default_factory=list)
    received_bytes: int = 0
    die: str = ""
    runner: web.AppRunner | None = None

    async def score(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        self.seen_headers.append(dict(request.headers))
        try:
            delay = float(request.query.get("delay", "0"))
            if self.die == "before-answer":
                await request.read()
                assert request.transport is not None
                request.transport.close()
                await asyncio.sleep(0.01)
                return web.Response(status=500)
            if self.die == "after-headers":
                response = web.StreamResponse()
                response.content_length = 1000
                await response.prepare(request)
                await response.write(b"partial")
                await asyncio.sleep(0.01)
                assert request.transport is not None
                request.transport.close()
                return response
            size = 0
            async for chunk in request.content.iter_any():
                size += len(chunk)
            self.received_bytes += size
            if delay:
                await asyncio.sleep(delay)
            if "status" in request.query:
                return web.Response(status=int(request.query["status"]))
            if "stream" in request.query:
                response = web.StreamResponse(headers={"x-ms-run-fn-exec-ms": "1"})
                await response.prepare(request)
                for index in range(int(request.query["stream"])):
                    await response.write(b"chunk-%d;" % index)
                    await asyncio.sleep(0)
                await response.write_eof()
                return response
            return web.json_response(
                {"bytes": size, "method": request.method, "backend": self.url},
                headers={"x-ms-run-fn-exec-ms": "1"},
            )
        finally:
            self.concurrent -= 1

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="Healthy")

    async def swagger(self, request: web.Request) -> web.Response:
        return web.json_response({"swagger": "2.0", "query": dict(request.query)})


@asynccontextmanager
async def backend(port: int = 0) -> AsyncIterator[Backend]:
    state = Backend()
    app = web.Application(client_max_size=1024**3)
    app.router.add_route("*", "/score", state.score)
    app.router.add_get("/", state.health)
    app.router.add_get("/swagger.json", state.swagger)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    assert site._server is not None
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{bound}"
    state.runner = runner
    try:
        yield state
    finally:
        await runner.cleanup()


async def eventually(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """Wait until `predicate()` holds; fail the test after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def router_config(services: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "listen": {"host": "127.0.0.1", "port": 0},
        "access_log": {"enabled": False},
        "drain_delay_seconds": 0,  # no load balancer to wait for in these tests
        "services": services,
        **extra,
    }


@asynccontextmanager
async def router(config: dict[str, Any]) -> AsyncIterator[RouterServer]:
    server = RouterServer(parse_config(config))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


Factory = Callable[..., Any]
