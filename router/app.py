"""What the router does with each request: v1 routes, auth, limits, queueing, retries, proxying.

Routes (as Azure ML v1 AKS web services expose them):
    POST|GET /api/v1/service/<name>/score        -> replica /score
    GET      /api/v1/service/<name>/swagger.json -> replica /swagger.json
    GET      /healthz, /readyz, /metrics, /-/load (utilisation shared with peer routers)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from router.accesslog import AccessLog
from router.auth import Authenticator, build_authenticator
from router.body import StreamedBody
from router.config import RouterConfig, ServiceConfig
from router.datacollect import DataCollector
from router.errors import AuthError, BodyTooLarge, NoReplicas, QueueTimeout, ReplicaFailed
from router.http11 import Request, Response
from router.metrics import RouterMetrics
from router.pool import Replica, ReplicaPool
from router.upstream import Exchange, UpstreamPool

log = logging.getLogger(__name__)

REQUEST_ID = "x-ms-request-id"
SERVICE_PREFIX = "/api/v1/service/"
SMALL_BODY = 64 * 1024
SMALL_RESPONSE = 256 * 1024
MAX_ATTEMPTS = 3
# Not forwarded: hop-by-hop headers, framing (set again per hop), and the client's credential,
# which is the router's business, not the model's.
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
        "expect",
        REQUEST_ID,
        "x-forwarded-for",
    }
)
_HOP_BY_HOP_BYTES = frozenset(name.encode() for name in HOP_BY_HOP)
RESPONSE_DROP = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", REQUEST_ID.encode()}
)
JSON = [(b"content-type", b"application/json")]
TEXT = [(b"content-type", b"text/plain; charset=utf-8")]


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


@dataclass
class _Outcome:
    replica: str | None = None
    bytes_out: int = 0


def _error(
    response: Response,
    status: int,
    message: str,
    close: bool = False,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    response.close_after = close
    response.send(status, [*JSON, *headers], json.dumps({"error": message}).encode())


class _RequestIds:
    """Request ids shaped as v4 UUIDs: a random per-process prefix and a counter.

    Unique without a random draw per request; ids are correlation handles, not secrets.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        seed = uuid.uuid4()
        self._prefix = str(seed)[:24]  # keeps the version and variant digits of a v4 UUID
        self._counter = itertools.count(seed.int & 0xFFFFFFFF)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFF:012x}"


_new_request_id = _RequestIds()


class Router:
    """Holds the services and answers requests; discovery and scaling feed its pools."""

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
        self.upstreams = UpstreamPool()
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
                pool = ReplicaPool(
                    service_config.replica_max_concurrent_requests,
                    on_removed=self.upstreams.drop,
                )
                current = Service(service_config, pool, auth)
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

    async def close(self) -> None:
        self.upstreams.close()
        for service in self.services.values():
            if service.collector:
                service.collector.close()
        self.access_log.close()

    # -- entry point ------------------------------------------------------------------------

    async def handle(self, request: Request, response: Response) -> None:
        path = request.path
        if path.startswith(SERVICE_PREFIX):
            name, _, leaf = path[len(SERVICE_PREFIX) :].partition("/")
            if leaf == "score" and request.method in ("POST", "GET"):
                await self._score(request, response, name, "/score")
                return
            if leaf == "swagger.json" and request.method == "GET":
                await self._score(request, response, name, "/swagger.json")
                return
        if request.method == "GET":
            if path == "/healthz":
                response.send(200, TEXT, b"ok")
                return
            if path == "/readyz":
                response.send(200 if self.ready else 503, TEXT, b"ready" if self.ready else b"wait")
                return
            if path == "/metrics":
                response.send(
                    200, [(b"content-type", b"text/plain; version=0.0.4")], self.metrics.render()
                )
                return
            if path == "/-/load":
                response.send(200, JSON, json.dumps(self.load_figures()).encode())
                return
        _error(response, 404, f"no route for {request.method} {path}")

    def bad_request(self, response: Response) -> None:
        _error(response, 400, "malformed HTTP request", close=True)

    def load_figures(self) -> dict[str, Any]:
        figures = {}
        for name, service in self.services.items():
            load = service.pool.load()
            figures[name] = {
                "replicas": load.replicas,
                "ready": load.ready,
                "busy": load.busy,
                "in_flight": load.in_flight,
                "queued": load.queued,
                "average_load": service.extra.get(
                    "average_load", float(load.in_flight + load.queued)
                ),
            }
        return {"router": self.peer_name, "services": figures}

    # -- scoring ----------------------------------------------------------------------------

    async def _score(self, request: Request, response: Response, name: str, path: str) -> None:
        started = time.perf_counter()
        request_id = request.headers.get(REQUEST_ID) or _new_request_id()
        outcome = _Outcome()
        service = self.services.get(name)
        try:
            if service is None:
                id_header = (b"x-ms-request-id", request_id.encode())
                _error(response, 404, f"no service named {name!r}", headers=[id_header])
            else:
                await self._authorised(request, response, service, path, request_id, outcome)
        finally:
            elapsed = time.perf_counter() - started
            status = response.status or 499
            self.metrics.observe(name, status, elapsed)
            if self.access_log.enabled:
                self.access_log.write(
                    time=time.time(),
                    request_id=request_id,
                    method=request.method,
                    path=request.path,
                    service=name,
                    replica=outcome.replica,
                    status=status,
                    latency_ms=round(elapsed * 1000, 3),
                    bytes_in=request.content_length,
                    bytes_out=outcome.bytes_out,
                )

    async def _authorised(  # noqa: PLR0917
        self,
        request: Request,
        response: Response,
        service: Service,
        path: str,
        request_id: str,
        outcome: _Outcome,
    ) -> None:
        id_header = (b"x-ms-request-id", request_id.encode())
        open_swagger = path == "/swagger.json" and not service.config.swagger_requires_auth
        try:
            if not open_swagger:
                await service.auth.check(request.headers.get("authorization"))
        except AuthError as exc:
            log.info("401 for %s (request %s): %s", service.config.name, request_id, exc)
            realm = f'Bearer realm="{service.config.name}"'.encode()
            response.send(401, [*TEXT, (b"www-authenticate", realm), id_header], b"Unauthorized")
            return
        limit = self.config.max_request_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            self._too_large(response, id_header)
            return
        body: bytes | StreamedBody
        if (length is not None and length <= SMALL_BODY) or (
            request.method == "GET" and not length
        ):
            body = await request.body.read_all() if length else b""
        else:
            body = StreamedBody(request.body, limit, self.config.replay_buffer_bytes)
        try:
            await self._dispatch(request, response, service, path, body, request_id, outcome)
        except BodyTooLarge:
            if not response.started:
                self._too_large(response, id_header)

    def _too_large(self, response: Response, id_header: tuple[bytes, bytes]) -> None:
        message = f"request body exceeds {self.config.max_request_body_bytes} bytes"
        response.close_after = True
        response.send(413, [*JSON, id_header], json.dumps({"error": message}).encode())

    async def _dispatch(  # noqa: PLR0917
        self,
        request: Request,
        response: Response,
        service: Service,
        path: str,
        body: bytes | StreamedBody,
        request_id: str,
        outcome: _Outcome,
    ) -> None:
        config = service.config
        id_header = (b"x-ms-request-id", request_id.encode())
        wait_seconds = config.max_request_wait_time / 1000
        tried: frozenset[str] = frozenset()
        for _attempt in range(MAX_ATTEMPTS):
            request.cancel_on_disconnect = asyncio.current_task()
            try:
                replica = await service.pool.acquire(wait_seconds, tried)
            except QueueTimeout:
                _error(
                    response,
                    503,
                    "no replica became free within max_request_wait_time",
                    headers=[id_header],
                )
                return
            except NoReplicas:
                _error(response, 503, "the service has no replica available", headers=[id_header])
                return
            finally:
                request.cancel_on_disconnect = None
            outcome.replica = replica.name
            try:
                await self._forward(
                    request, response, service, replica, path, body, request_id, outcome
                )
                return
            except ReplicaFailed as exc:
                log.warning("replica %s of %s failed: %s", replica.name, config.name, exc)
                service.pool.take_out_of_rotation(replica, self.config.replica_retry_seconds)
                self.upstreams.drop(replica.url)
                tried = tried | {replica.url}
                if isinstance(body, StreamedBody) and not body.replayable:
                    _error(
                        response,
                        502,
                        "the replica failed while receiving the request",
                        headers=[id_header],
                    )
                    return
                self.metrics.retries.labels(config.name).inc()
            except _ScoringTimeout:
                message = f"scoring took longer than {config.scoring_timeout_ms} ms"
                _error(response, 504, message, headers=[id_header])
                return
            finally:
                service.pool.release(replica)
        _error(response, 502, "every replica tried failed", headers=[id_header])

    def _upstream_head(self, request: Request, path: str, request_id: str) -> bytes:
        target = f"{path}?{request.query}" if request.query else path
        lines = [f"{request.method} {target} HTTP/1.1\r\n".encode("latin-1")]
        lines.extend(
            b"%s: %s\r\n" % (name, value)
            for name, value in request.raw_headers
            if name not in _HOP_BY_HOP_BYTES
        )
        lines.append(f"x-ms-request-id: {request_id}\r\n".encode("latin-1"))
        forwarded = request.headers.get("x-forwarded-for")
        if request.remote:
            chain = f"{forwarded}, {request.remote}" if forwarded else request.remote
            lines.append(f"x-forwarded-for: {chain}\r\n".encode("latin-1"))
        return b"".join(lines)

    async def _forward(  # noqa: PLR0917
        self,
        request: Request,
        response: Response,
        service: Service,
        replica: Replica,
        path: str,
        body: bytes | StreamedBody,
        request_id: str,
        outcome: _Outcome,
    ) -> None:
        head = self._upstream_head(request, path, request_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + service.config.scoring_timeout_ms / 1000
        exchange: Exchange | None = None
        try:
            async with asyncio.timeout_at(deadline):
                exchange = await self.upstreams.exchange(replica.url, head, body)
                headers = _response_headers(exchange.headers, request_id)
                length = exchange.content_length
                collector = service.collector
                if length is not None and length <= SMALL_RESPONSE:
                    payload = await exchange.read_all()
                    exchange.finish()
                    outcome.bytes_out = len(payload)
                    response.send(exchange.status, headers, payload)
                    if collector is not None:
                        collector.collect(request_id, exchange.status, _kept(body), payload)
                    return
                response.start(exchange.status, headers, length)
                while chunk := await exchange.read():
                    outcome.bytes_out += len(chunk)
                    await response.write(chunk)
                response.end()
                exchange.finish()
                if collector is not None:
                    collector.collect(request_id, exchange.status, _kept(body), None)
        except TimeoutError as exc:
            if exchange is not None:
                exchange.abort()
            if response.started:
                raise ConnectionResetError("scoring timeout while streaming the response") from exc
            raise _ScoringTimeout from exc
        except ConnectionResetError:
            if exchange is not None:
                exchange.abort()
            if isinstance(body, StreamedBody) and body.too_large:
                raise BodyTooLarge("request body over the limit") from None
            if not response.started:
                _error(
                    response,
                    502,
                    "the replica's response was cut off",
                    headers=[(b"x-ms-request-id", request_id.encode())],
                )
                return
            raise
        except BaseException:
            if exchange is not None:
                exchange.abort()
            raise


def _response_headers(
    upstream: Iterable[tuple[bytes, bytes]], request_id: str
) -> list[tuple[bytes, bytes]]:
    headers = [(name, value) for name, value in upstream if name not in RESPONSE_DROP]
    headers.append((b"x-ms-request-id", request_id.encode("latin-1")))
    return headers


def _kept(body: bytes | StreamedBody) -> bytes | None:
    return body if isinstance(body, bytes) else body.recorded()
