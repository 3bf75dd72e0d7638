"""What the router does with each request: v1 routes, auth, limits, queueing, retries, proxying.

Routes (as Azure ML v1 AKS web services expose them):
    POST|GET /api/v1/service/<name>/score        -> replica /score
    GET      /api/v1/service/<name>/swagger.json -> replica /swagger.json
    GET      /healthz, /readyz, /metrics, /-/load (utilisation and figures shared with peer
             routers), /-/scaling (the router's own scaling, on the coordinating router)
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from router.accesslog import AccessLog
from router.auth import Authenticator, build_authenticator
from router.body import StreamedBody
from router.config import RouterConfig, ServiceConfig
from router.datacollect import DataCollector
from router.errors import AuthError, BodyTooLarge, NoReplicas, QueueTimeout, ReplicaFailed
from router.figures import FigureSampler
from router.messages import Request, Response
from router.metrics import RouterMetrics
from router.pool import Replica, ReplicaPool
from router.upstream import Exchange, UpstreamPool
from router.wire import (
    JSON,
    JSON_LINES,
    REQUEST_ID,
    TEXT,
    TEXT_LINES,
    Deadline,
    error,
    new_request_id,
    request_id_of,
    upstream_head,
)

log = logging.getLogger(__name__)

SERVICE_PREFIX = "/api/v1/service/"
SMALL_BODY = 64 * 1024
SMALL_RESPONSE = 256 * 1024
MAX_ATTEMPTS = 3


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


class Router:
    """Holds the services and answers requests; discovery and scaling feed its pools."""

    def __init__(self, config: RouterConfig) -> None:
        self.config = config
        self.services: dict[str, Service] = {}
        self.ready = False
        self.peer_name = config.own_name
        self.metrics = RouterMetrics(
            lambda: {name: s.pool for name, s in self.services.items()},
            lambda: {
                name: s.desired_replicas
                for name, s in self.services.items()
                if s.desired_replicas is not None
            },
        )
        self.access_log = AccessLog(config.access_log.enabled, config.access_log.path)
        self.upstreams = UpstreamPool(drop_headers=frozenset({REQUEST_ID.encode()}))
        self.new_request_id = new_request_id
        # Set by the server: the routing-time and CPU sampler, and the self-scaling status.
        self.figures: FigureSampler | None = None
        self.scaling_status: Callable[[], dict[str, Any] | None] | None = None
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
            if path == "/-/scaling":
                status = self.scaling_status() if self.scaling_status else None
                if status is None:
                    error(response, 404, "the router's self-scaling does not run here")
                else:
                    response.send(200, JSON, json.dumps(status).encode())
                return
        error(response, 404, f"no route for {request.method} {path}")

    def bad_request(self, response: Response) -> None:
        error(response, 400, "malformed HTTP request", close=True)

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
        answer: dict[str, Any] = {"router": self.peer_name, "services": figures}
        if self.figures is not None:
            answer["figures"] = self.figures.snapshot().to_json()
        return answer

    # -- scoring ----------------------------------------------------------------------------

    async def _score(self, request: Request, response: Response, name: str, path: str) -> None:
        started = time.perf_counter()
        request_id = request.headers.get(REQUEST_ID) or new_request_id()
        id_line = b"x-ms-request-id: %s\r\n" % request_id.encode("latin-1")
        outcome = _Outcome()
        service = self.services.get(name)
        try:
            if service is None:
                error(response, 404, f"no service named {name!r}", lines=[id_line])
            else:
                await self._authorised(request, response, service, path, id_line, outcome)
        finally:
            elapsed = time.perf_counter() - started
            status = response.status or 499
            self.record(
                request, name, status, elapsed, request_id, outcome.replica, outcome.bytes_out
            )

    def record(  # noqa: PLR0917
        self,
        request: Request,
        service: str,
        status: int,
        elapsed: float,
        request_id: str,
        replica: str | None,
        bytes_out: int,
    ) -> None:
        """Metrics and the access log line for one answered scoring request."""
        self.metrics.observe(service, status, elapsed)
        if self.access_log.enabled:
            self.access_log.write(
                time=time.time(),
                request_id=request_id,
                method=request.method,
                path=request.path,
                service=service,
                replica=replica,
                status=status,
                latency_ms=round(elapsed * 1000, 3),
                bytes_in=request.content_length,
                bytes_out=bytes_out,
            )

    async def _check_auth(self, request: Request, service: Service) -> None:
        """Check the credential once per connection and credential, not once per request.

        The cache holds the authenticator it was checked by (a reload builds new ones, so a
        rotated key is checked again) and the credential's expiry (tokens expire).
        """
        authorization = request.headers.get("authorization")
        connection = request.connection
        cached = connection.auth_cache
        if (
            cached is not None
            and cached[0] is service.auth
            and cached[1] == authorization
            and (cached[2] == math.inf or cached[2] > time.time())
        ):
            return
        valid_until = await service.auth.check(authorization)
        connection.auth_cache = (service.auth, authorization, valid_until)

    async def _authorised(  # noqa: PLR0917
        self,
        request: Request,
        response: Response,
        service: Service,
        path: str,
        id_line: bytes,
        outcome: _Outcome,
    ) -> None:
        if path != "/swagger.json" or service.config.swagger_requires_auth:
            try:
                await self._check_auth(request, service)
            except AuthError as exc:
                log.info(
                    "401 for %s (request %s): %s", service.config.name, request_id_of(id_line), exc
                )
                realm = f'Bearer realm="{service.config.name}"'.encode()
                response.send_lines(
                    401,
                    [*TEXT_LINES, b"www-authenticate: %s\r\n" % realm, id_line],
                    b"Unauthorized",
                )
                return
        limit = self.config.max_request_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            self._too_large(response, id_line)
            return
        body: bytes | StreamedBody
        if (length is not None and length <= SMALL_BODY) or (
            request.method == "GET" and not length
        ):
            body = await request.body.read_all() if length else b""
        else:
            body = StreamedBody(request.body, limit, self.config.replay_buffer_bytes)
        try:
            await self._dispatch(request, response, service, path, body, id_line, outcome)
        except BodyTooLarge:
            if not response.started:
                self._too_large(response, id_line)

    def _too_large(self, response: Response, id_line: bytes) -> None:
        message = f"request body exceeds {self.config.max_request_body_bytes} bytes"
        response.close_after = True
        response.send_lines(413, [*JSON_LINES, id_line], json.dumps({"error": message}).encode())

    async def _acquire(self, request: Request, service: Service, tried: frozenset[str]) -> Replica:
        """A free replica at once, or a place in the queue that a leaving client gives up."""
        replica: Replica | None = request.claimed
        if replica is not None:
            request.claimed = None
            if replica in service.pool.replicas:
                return replica
            service.pool.unclaim(replica)
        replica = service.pool.try_acquire(tried)
        if replica is not None:
            return replica
        request.cancel_on_disconnect = request.connection.worker
        try:
            return await service.pool.acquire(service.config.max_request_wait_time / 1000, tried)
        finally:
            request.cancel_on_disconnect = None

    async def _dispatch(  # noqa: PLR0917
        self,
        request: Request,
        response: Response,
        service: Service,
        path: str,
        body: bytes | StreamedBody,
        id_line: bytes,
        outcome: _Outcome,
    ) -> None:
        config = service.config
        tried: frozenset[str] = frozenset()
        for _attempt in range(MAX_ATTEMPTS):
            try:
                replica = await self._acquire(request, service, tried)
            except QueueTimeout:
                message = "no replica became free within max_request_wait_time"
                error(response, 503, message, lines=[id_line])
                return
            except NoReplicas:
                error(response, 503, "the service has no replica available", lines=[id_line])
                return
            outcome.replica = replica.name
            try:
                await self._forward(
                    request, response, service, replica, path, body, id_line, outcome
                )
                return
            except ReplicaFailed as exc:
                log.warning("replica %s of %s failed: %s", replica.name, config.name, exc)
                service.pool.take_out_of_rotation(replica, self.config.replica_retry_seconds)
                self.upstreams.drop(replica.url)
                tried = tried | {replica.url}
                if isinstance(body, StreamedBody) and not body.replayable:
                    message = "the replica failed while receiving the request"
                    error(response, 502, message, lines=[id_line])
                    return
                self.metrics.retries.labels(config.name).inc()
            except _ScoringTimeout:
                message = f"scoring took longer than {config.scoring_timeout_ms} ms"
                error(response, 504, message, lines=[id_line])
                return
            finally:
                service.pool.release(replica)
        error(response, 502, "every replica tried failed", lines=[id_line])

    async def _forward(  # noqa: PLR0917
        self,
        request: Request,
        response: Response,
        service: Service,
        replica: Replica,
        path: str,
        body: bytes | StreamedBody,
        id_line: bytes,
        outcome: _Outcome,
    ) -> None:
        head = upstream_head(request, path, id_line)
        deadline = Deadline(request.connection.worker)
        timer = asyncio.get_running_loop().call_later(
            service.config.scoring_timeout_ms / 1000, deadline.expire
        )
        exchange: Exchange | None = None
        try:
            exchange = await self.upstreams.exchange(replica.url, head, body)
            lines = exchange.forward_lines
            lines.append(id_line)
            length = exchange.content_length
            collector = service.collector
            if length is not None and length <= SMALL_RESPONSE:
                payload = await exchange.read_all()
                exchange.finish()
                outcome.bytes_out = len(payload)
                response.send_lines(exchange.status, lines, payload)
                if collector is not None:
                    collector.collect(request_id_of(id_line), exchange.status, _kept(body), payload)
                return
            response.start_lines(exchange.status, lines, length)
            while chunk := await exchange.read():
                outcome.bytes_out += len(chunk)
                await response.write(chunk)
            response.end()
            exchange.finish()
            if collector is not None:
                collector.collect(request_id_of(id_line), exchange.status, _kept(body), None)
        except asyncio.CancelledError as exc:
            if exchange is not None:
                exchange.abort()
            if not deadline.uncancel():
                raise
            if response.started:
                raise ConnectionResetError("scoring timeout while streaming the response") from exc
            raise _ScoringTimeout from exc
        except ConnectionResetError:
            if exchange is not None:
                exchange.abort()
            if isinstance(body, StreamedBody) and body.too_large:
                raise BodyTooLarge("request body over the limit") from None
            if not response.started:
                error(response, 502, "the replica's response was cut off", lines=[id_line])
                return
            raise
        except BaseException:
            if exchange is not None:
                exchange.abort()
            raise
        finally:
            timer.cancel()


def _kept(body: bytes | StreamedBody) -> bytes | None:
    return body if isinstance(body, bytes) else body.recorded()
