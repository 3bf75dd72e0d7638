"""The HTTP front end: v1 scoring routes, auth, limits, queueing, retries and proxying.

Routes (as Azure ML v1 AKS web services expose them):
    POST|GET /api/v1/service/<name>/score        -> replica /score
    GET      /api/v1/service/<name>/swagger.json -> replica /swagger.json
    GET      /healthz, /readyz, /metrics, /-/load (utilisation shared with peer routers)
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from router.accesslog import AccessLog
from router.auth import Authenticator, build_authenticator
from router.body import StreamedBody
from router.config import RouterConfig, ServiceConfig
from router.datacollect import DataCollector
from router.errors import (
    AuthError,
    BodyTooLarge,
    NoReplicas,
    QueueTimeout,
    ReplicaFailed,
)
from router.metrics import RouterMetrics
from router.pool import Replica, ReplicaPool

log = logging.getLogger(__name__)

REQUEST_ID = "x-ms-request-id"
SMALL_BODY = 64 * 1024
SMALL_RESPONSE = 256 * 1024
MAX_ATTEMPTS = 3
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "authorization",
    }
)
RESPONSE_DROP = frozenset({*HOP_BY_HOP, "date", "server", REQUEST_ID})


class _ScoringTimeout(Exception):
    """The replica did not answer within scoring_timeout_ms."""


@dataclass
class Service:
    """What the router holds for one web service; swapped in place on a config reload."""

    config: ServiceConfig
    pool: ReplicaPool
    auth: Authenticator
    collector: DataCollector | None = None
    desired_replicas: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _json_error(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _unauthorized(service: str) -> web.Response:
    return web.Response(
        status=401,
        text="Unauthorized",
        headers={"WWW-Authenticate": f'Bearer realm="{service}"'},
    )


class Router:
    """Holds the services and serves the HTTP routes; discovery and scaling feed its pools."""

    def __init__(self, config: RouterConfig) -> None:
        self.config = config
        self.services: dict[str, Service] = {}
        self.ready = False
        self.peer_name = config.peers.self_name
        self.metrics = RouterMetrics(
            lambda: {name: s.pool for name, s in self.services.items()},
            lambda: {
                name: s.desired_replicas
                for name, s in self.services.items()
                if s.desired_replicas is not None
            },
        )
        self.access_log = AccessLog(config.access_log.enabled, config.access_log.path)
        self._session: aiohttp.ClientSession | None = None
        self.apply_config(config)

    # -- configuration ----------------------------------------------------------------------

    def apply_config(self, config: RouterConfig) -> None:
        """Add, update and remove services without dropping requests in flight."""
        self.config = config
        for name in [name for name in self.services if config.service(name) is None]:
            removed = self.services.pop(name)
            if removed.collector:
                removed.collector.close()
        for service_config in config.services:
            auth = build_authenticator(service_config.auth, service_config.name)
            current = self.services.get(service_config.name)
            if current is None:
                current = Service(
                    service_config,
                    ReplicaPool(service_config.replica_max_concurrent_requests),
                    auth,
                )
                self.services[service_config.name] = current
            current.config = service_config
            current.auth = auth
            current.pool.capacity = service_config.replica_max_concurrent_requests
            if service_config.replicas:
                current.pool.set_replicas(service_config.replicas)
            wants_collector = service_config.data_collection.enabled
            if wants_collector and current.collector is None:
                current.collector = DataCollector(
                    service_config.name, service_config.data_collection
                )
            elif not wants_collector and current.collector is not None:
                current.collector.close()
                current.collector = None

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=60, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        for service in self.services.values():
            if service.collector:
                service.collector.close()
        self.access_log.close()

    def application(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_request_body_bytes + 1)
        prefix = "/api/v1/service/{service}"
        app.router.add_route("POST", prefix + "/score", self.score)
        app.router.add_route("GET", prefix + "/score", self.score)
        app.router.add_route("GET", prefix + "/swagger.json", self.swagger)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.prometheus)
        app.router.add_get("/-/load", self.load)
        return app

    # -- own endpoints ----------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(self, request: web.Request) -> web.Response:
        return web.Response(text="ready") if self.ready else web.Response(status=503, text="wait")

    async def prometheus(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), content_type="text/plain")

    async def load(self, request: web.Request) -> web.Response:
        figures = {
            name: {
                "replicas": load.replicas,
                "ready": load.ready,
                "busy": load.busy,
                "in_flight": load.in_flight,
                "queued": load.queued,
                "average_load": service.extra.get(
                    "average_load", float(load.in_flight + load.queued)
                ),
            }
            for name, service in self.services.items()
            for load in [service.pool.load()]
        }
        return web.json_response({"router": self.peer_name, "services": figures})

    # -- scoring ----------------------------------------------------------------------------

    async def score(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "/score")

    async def swagger(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "/swagger.json")

    async def _handle(self, request: web.Request, path: str) -> web.StreamResponse:
        started = time.perf_counter()
        name = request.match_info["service"]
        request_id = request.headers.get(REQUEST_ID) or str(uuid.uuid4())
        service = self.services.get(name)
        outcome: dict[str, Any] = {"replica": None, "bytes_out": 0}
        if service is None:
            response: web.StreamResponse = _json_error(404, f"no service named {name!r}")
        else:
            response = await self._authorised(request, service, path, request_id, outcome)
        if not response.prepared:
            response.headers[REQUEST_ID] = request_id
        elapsed = time.perf_counter() - started
        self.metrics.observe(name, response.status, elapsed)
        if self.access_log.enabled:
            self.access_log.write(
                time=time.time(),
                request_id=request_id,
                method=request.method,
                path=request.path,
                service=name,
                replica=outcome["replica"],
                status=response.status,
                latency_ms=round(elapsed * 1000, 3),
                bytes_in=request.content_length,
                bytes_out=outcome["bytes_out"],
            )
        return response

    async def _authorised(
        self,
        request: web.Request,
        service: Service,
        path: str,
        request_id: str,
        outcome: dict[str, Any],
    ) -> web.StreamResponse:
        try:
            await service.auth.check(request.headers.get("Authorization"))
        except AuthError as exc:
            log.info("401 for %s (request %s): %s", service.config.name, request_id, exc)
            return _unauthorized(service.config.name)
        limit = self.config.max_request_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            return self._too_large(request)
        body: bytes | StreamedBody
        if request.method == "GET" or (length is not None and length <= SMALL_BODY):
            body = await request.read()
        else:
            body = StreamedBody(request.content, limit, self.config.replay_buffer_bytes)
        try:
            return await self._dispatch(
                request=request,
                service=service,
                path=path,
                body=body,
                request_id=request_id,
                outcome=outcome,
            )
        except BodyTooLarge:
            return self._too_large(request)

    def _too_large(self, request: web.Request) -> web.Response:
        response = _json_error(
            413, f"request body exceeds {self.config.max_request_body_bytes} bytes"
        )
        response.force_close()
        return response

    async def _dispatch(
        self,
        *,
        request: web.Request,
        service: Service,
        path: str,
        body: bytes | StreamedBody,
        request_id: str,
        outcome: dict[str, Any],
    ) -> web.StreamResponse:
        config = service.config
        wait_seconds = config.max_request_wait_time / 1000
        tried: frozenset[str] = frozenset()
        for _attempt in range(MAX_ATTEMPTS):
            try:
                replica = await service.pool.acquire(wait_seconds, tried)
            except QueueTimeout:
                return _json_error(503, "no replica became free within max_request_wait_time")
            except NoReplicas:
                return _json_error(503, "the service has no replica available")
            outcome["replica"] = replica.name
            try:
                return await self._forward(
                    request=request,
                    service=service,
                    replica=replica,
                    path=path,
                    body=body,
                    request_id=request_id,
                    outcome=outcome,
                )
            except ReplicaFailed as exc:
                log.warning("replica %s of %s failed: %s", replica.name, config.name, exc)
                service.pool.take_out_of_rotation(replica, self.config.replica_retry_seconds)
                tried = tried | {replica.url}
                if isinstance(body, StreamedBody) and not body.replayable:
                    return _json_error(502, "the replica failed while receiving the request")
                self.metrics.retries.labels(config.name).inc()
            except _ScoringTimeout:
                return _json_error(504, f"scoring took longer than {config.scoring_timeout_ms} ms")
            finally:
                service.pool.release(replica)
        return _json_error(502, "every replica tried failed")

    def _upstream_headers(self, request: web.Request, request_id: str) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict(
            (key, value) for key, value in request.headers.items() if key.lower() not in HOP_BY_HOP
        )
        headers[REQUEST_ID] = request_id
        if request.remote:
            forwarded = request.headers.get("X-Forwarded-For")
            headers["X-Forwarded-For"] = (
                f"{forwarded}, {request.remote}" if forwarded else request.remote
            )
        return headers

    async def _forward(
        self,
        *,
        request: web.Request,
        service: Service,
        replica: Replica,
        path: str,
        body: bytes | StreamedBody,
        request_id: str,
        outcome: dict[str, Any],
    ) -> web.StreamResponse:
        assert self._session is not None, "Router.start() was not awaited"
        url = replica.url + path + (f"?{request.query_string}" if request.query_string else "")
        data = body if isinstance(body, bytes) else body.chunks()
        timeout_seconds = service.config.scoring_timeout_ms / 1000
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds
        response: web.StreamResponse | None = None
        answered = False
        try:
            async with asyncio.timeout_at(deadline):
                upstream = await self._session.request(
                    request.method,
                    url,
                    headers=self._upstream_headers(request, request_id),
                    data=data if request.method != "GET" or body else None,
                    allow_redirects=False,
                )
                answered = True
                try:
                    headers = CIMultiDict(
                        (k, v)
                        for k, v in upstream.headers.items()
                        if k.lower() not in RESPONSE_DROP
                    )
                    headers[REQUEST_ID] = request_id
                    length = upstream.content_length
                    collector = service.collector
                    if length is not None and length <= SMALL_RESPONSE:
                        payload = await upstream.read()
                        outcome["bytes_out"] = len(payload)
                        if collector is not None:
                            collector.collect(request_id, upstream.status, _kept(body), payload)
                        return web.Response(status=upstream.status, body=payload, headers=headers)
                    response = web.StreamResponse(status=upstream.status, headers=headers)
                    if length is not None:
                        response.content_length = length
                    await response.prepare(request)
                    async for chunk in upstream.content.iter_any():
                        outcome["bytes_out"] += len(chunk)
                        await response.write(chunk)
                    await response.write_eof()
                    if collector is not None:
                        collector.collect(request_id, upstream.status, _kept(body), None)
                    return response
                finally:
                    upstream.release()
        except TimeoutError as exc:
            if response is not None and response.prepared:
                raise ConnectionResetError("scoring timeout while streaming the response") from exc
            raise _ScoringTimeout from exc
        except BodyTooLarge:
            raise
        except aiohttp.ClientError as exc:
            if isinstance(body, StreamedBody) and body.too_large:
                raise BodyTooLarge("request body over the limit") from exc
            if response is not None and response.prepared:
                raise
            if not answered and isinstance(
                exc, aiohttp.ClientConnectionError | aiohttp.ServerDisconnectedError
            ):
                raise ReplicaFailed(str(exc) or type(exc).__name__) from exc
            return _json_error(502, f"the replica's response was broken: {type(exc).__name__}")


def _kept(body: bytes | StreamedBody) -> bytes | None:
    return body if isinstance(body, bytes) else body.recorded()
