"""Scoring requests answered from protocol callbacks, without a coroutine, when nothing waits.

Most scoring requests are small, come on a connection whose credential was already checked,
find a free replica and a kept-alive connection to it, and get a small answer. For those the
router writes the request to the replica from the client parser's callback and the answer to
the client from the replica parser's callback: no task, no future, no event-loop hop. That
is about half of the router's CPU per request (docs/router.md, "where the time goes").

Anything else takes the general path in `router.app` and keeps its exact behaviour: the fast
path declines before it sends anything, and a kept-alive connection that turns out to be
closed before any byte of the answer hands the request back (the general path then retries
it, as it would have). A large answer is streamed by a task started at its head.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import TYPE_CHECKING

from router.messages import Request, Response
from router.wire import upstream_head

if TYPE_CHECKING:
    from router.app import Router, Service
    from router.pool import Replica
    from router.upstream import Exchange

SERVICE_PREFIX = "/api/v1/service/"
REQUEST_ID = "x-ms-request-id"
SMALL_BODY = 64 * 1024
SMALL_RESPONSE = 256 * 1024
_JSON_LINE = b"content-type: application/json\r\n"
_NO_EXCLUSIONS: frozenset[str] = frozenset()


def try_fast(router: Router, request: Request, response: Response) -> bool:
    """Start answering `request` from callbacks; False (having done nothing) when it cannot."""
    path = request.path
    if not path.startswith(SERVICE_PREFIX) or request.method not in ("POST", "GET"):
        return False
    name, _, leaf = path[len(SERVICE_PREFIX) :].partition("/")
    service = router.services.get(name)
    if service is None or leaf != "score":
        return False
    cached = request.connection.auth_cache
    if (
        cached is None
        or cached[0] is not service.auth
        or cached[1] != request.headers.get("authorization")
        or (cached[2] != math.inf and cached[2] <= time.time())
    ):
        return False
    body = request.body.peek_all()
    if len(body) > SMALL_BODY or len(body) > router.config.max_request_body_bytes:
        return False
    replica = service.pool.try_acquire(_NO_EXCLUSIONS)
    if replica is None:
        return False
    request_id = request.headers.get(REQUEST_ID) or router.new_request_id()
    id_line = b"x-ms-request-id: %s\r\n" % request_id.encode("latin-1")
    flight = _Flight(router, request, response, service, replica, id_line, request_id, body)
    head = upstream_head(request, "/score", id_line)
    exchange = router.upstreams.send_on_idle(replica.url, head, body, flight)
    if exchange is None:  # no idle connection to it: the general path connects, same replica
        request.claimed = replica
        return False
    flight.start(exchange)
    router.metrics.stats.fast_path += 1
    return True


class _Flight:
    """One request on the fast path: the replica's parser reports to it (ExchangeListener)."""

    __slots__ = (
        "body",
        "buffer_limit",
        "bytes_out",
        "exchange",
        "id_line",
        "replica",
        "request",
        "request_id",
        "response",
        "router",
        "service",
        "started",
        "stream_task",
        "timer",
    )

    def __init__(  # noqa: PLR0917
        self,
        router: Router,
        request: Request,
        response: Response,
        service: Service,
        replica: Replica,
        id_line: bytes,
        request_id: str,
        body: bytes,
    ) -> None:
        self.router = router
        self.request = request
        self.response = response
        self.service = service
        self.replica = replica
        self.id_line = id_line
        self.request_id = request_id
        self.body = body
        self.buffer_limit = SMALL_RESPONSE
        self.bytes_out = 0
        self.started = time.perf_counter()
        self.exchange: Exchange | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.stream_task: asyncio.Task[None] | None = None

    def start(self, exchange: Exchange) -> None:
        self.exchange = exchange
        timeout = self.service.config.scoring_timeout_ms / 1000
        self.timer = exchange.loop.call_later(timeout, self.expire)

    # -- the replica's answer ---------------------------------------------------------------

    def on_complete(self) -> None:
        exchange = self.exchange
        assert exchange is not None
        payload = exchange.body_bytes()
        status = exchange.status
        lines = exchange.forward_lines
        lines.append(self.id_line)
        exchange.finish()
        self.bytes_out = len(payload)
        self.response.send_lines(status, lines, payload)
        collector = self.service.collector
        if collector is not None:
            collector.collect(self.request_id, status, self.body, payload)
        self._done()

    def on_failed(self) -> None:
        exchange = self.exchange
        assert exchange is not None
        if exchange.answered:  # bytes came: never sent again, as on the general path
            self._error(502, "the replica's response was cut off")
            return
        self._cancel_timer()
        self.service.pool.unclaim(self.replica)
        self.request.connection.fall_back()

    def on_head(self) -> None:
        self.stream_task = asyncio.ensure_future(self._stream())

    def expire(self) -> None:
        if self.stream_task is not None:
            self.stream_task.cancel()
            return
        exchange = self.exchange
        assert exchange is not None
        exchange.listener = None
        exchange.abort()
        timeout = self.service.config.scoring_timeout_ms
        self._error(504, f"scoring took longer than {timeout} ms")

    # -- finishing --------------------------------------------------------------------------

    async def _stream(self) -> None:
        """A large or unsized answer: streamed with flow control, by a task of its own."""
        exchange = self.exchange
        assert exchange is not None
        response = self.response
        lines = exchange.forward_lines
        lines.append(self.id_line)
        complete = False
        try:
            response.start_lines(exchange.status, lines, exchange.content_length)
            while chunk := await exchange.read():
                self.bytes_out += len(chunk)
                await response.write(chunk)
            response.end()
            exchange.finish()
            complete = True
            collector = self.service.collector
            if collector is not None:
                collector.collect(self.request_id, exchange.status, self.body, None)
        except (ConnectionError, asyncio.CancelledError):
            exchange.abort()
        finally:
            if complete:
                self._done()
            else:
                self._cancel_timer()
                self.service.pool.release(self.replica)
                self._record()
                response.abort()
                self.request.connection.finish_fast(self.request, response)

    def _error(self, status: int, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        self.response.send_lines(status, [_JSON_LINE, self.id_line], body)
        self._done()

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()

    def _done(self) -> None:
        self._cancel_timer()
        self.service.pool.release(self.replica)
        self._record()
        self.request.connection.finish_fast(self.request, self.response)

    def _record(self) -> None:
        self.router.record(
            self.request,
            self.service.config.name,
            self.response.status or 499,
            time.perf_counter() - self.started,
            self.request_id,
            self.replica.name,
            self.bytes_out,
        )
