"""The router's HTTP/1.1 server: asyncio protocols with the httptools parser (as uvicorn uses).

Measured against aiohttp's server and client (docs/router.md), this costs about a seventh of
the CPU per proxied request, which is what lets one Python process approach nginx. It does
only what a scoring front end needs: keep-alive, pipelining (answered in order), bodies by
Content-Length or chunked with flow control both ways, `Expect: 100-continue`, and TLS
(through the event loop's SSL transport). Everything above the wire lives in `router.app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, cast

import httptools

from router.messages import ClientGone, Request, Response

log = logging.getLogger(__name__)

MAX_PIPELINED = 16
KEEPALIVE_SECONDS = 75.0
LINGER_SECONDS = 5.0
LINGER_BYTES = 256 * 1024 * 1024
Headers = list[tuple[bytes, bytes]]

LOOKED_UP = frozenset(
    {b"authorization", b"content-length", b"expect", b"x-ms-request-id", b"x-forwarded-for"}
)


Handler = Callable[[Request, Response], Awaitable[None]]
# Answers a request without a coroutine when it can (True); it then calls `finish_fast`.
FastHandler = Callable[[Request, Response], bool]
FAST_BODY_LIMIT = 64 * 1024


class ServerConnection(asyncio.Protocol):
    """One client connection: parses requests and hands them, in order, to the handler."""

    def __init__(
        self,
        handler: Handler,
        on_bad_request: Callable[[Response], None],
        fast: FastHandler | None = None,
        registry: ConnectionRegistry | None = None,
    ) -> None:
        self._handler = handler
        self._registry = registry
        # Set when the router stops: the next answer says `connection: close`, idle ends now.
        self.draining = registry.draining if registry is not None else False
        self._on_bad_request = on_bad_request
        self._fast = fast
        # A request the fast handler may take once its (small) body is in: set at the end of
        # its head, cleared when the body completes or the bytes at hand run out.
        self._deferred: Request | None = None
        self._fast_active = False
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._header_name = b""
        self._current: Request | None = None
        self._queue: deque[Request] = deque()
        self._loop = asyncio.get_running_loop()
        # One worker task per connection, parked on `_more` between requests: waking a future
        # costs far less than creating a task for every request.
        self._worker: asyncio.Task[None] | None = None
        self._more: asyncio.Future[None] | None = None
        self._busy = False
        self.auth_cache: tuple[object, str | None, float] | None = None
        self._reading_paused = False
        self._writing_paused: asyncio.Future[None] | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._last_active = 0.0
        self._closing = False
        self._discarding = False
        self._discarded = 0
        self._eof = False
        self.remote = ""
        self.remote_bytes = b""

    # -- transport events -------------------------------------------------------------------

    @property
    def worker(self) -> asyncio.Task[None] | None:
        """The task running this connection's requests (one for the connection's lifetime)."""
        return self._worker

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        peer = transport.get_extra_info("peername")
        self.remote = str(peer[0]) if peer else ""
        self.remote_bytes = self.remote.encode("latin-1")
        if self._registry is not None:
            self._registry.connections.add(self)
        self._arm_idle_timer()

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            self._discarded += len(data)
            if self._discarded > LINGER_BYTES:
                self._abort()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            # The router's own code failed inside a parser callback: a bug, not a bad
            # request. Logged with its cause; the client sees the connection cut.
            log.error("request handling failed", exc_info=exc.__context__ or exc)
            self._abort()
            return
        except httptools.HttpParserUpgrade:
            self._bad_request()
        except httptools.HttpParserError:
            self._bad_request()
        if self._deferred is not None:  # the body is still coming: stream it, slowly
            self._deferred = None
            self._start_worker()

    def eof_received(self) -> bool:
        """The client stopped sending: like nginx, take it as leaving for what still waits in
        the queue; what a replica already works on is answered, then the connection closes."""
        self._eof = True
        if self._current is not None and not self._current.body.complete:
            self._current.body.finish(failed=True)
        self._cancel_waiting()
        return self._busy

    def _cancel_waiting(self) -> None:
        for waiting in (self._current, *self._queue):
            if waiting is not None and waiting.cancel_on_disconnect is not None:
                waiting.cancel_on_disconnect.cancel()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._transport = None
        if self._registry is not None:
            self._registry.connections.discard(self)
        self._cancel_waiting()
        if self._current is not None:
            self._current.body.finish(failed=not self._current.body.complete)
        for request in self._queue:
            request.body.finish(failed=not request.body.complete)
        if self._writing_paused is not None and not self._writing_paused.done():
            self._writing_paused.set_exception(ConnectionResetError("client disconnected"))
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._wake_worker()

    def _wake_worker(self) -> None:
        if self._more is not None and not self._more.done():
            self._more.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._writing_paused is not None and not self._writing_paused.done():
            self._writing_paused.set_result(None)
        self._writing_paused = None

    # -- parser callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._current is None:
            method = self._parser.get_method().decode("ascii")
            self._current = Request(self, method, self._url)
        lower = name.lower()
        self._current.raw_headers.append((lower, value))
        if lower in LOOKED_UP:
            key = lower.decode("latin-1")
            text = value.decode("latin-1")
            headers = self._current.headers
            headers[key] = text if key not in headers else f"{headers[key]}, {text}"

    def on_headers_complete(self) -> None:
        if self._current is None:
            method = self._parser.get_method().decode("ascii")
            self._current = Request(self, method, self._url)
        request = self._current
        request.keep_alive = bool(self._parser.should_keep_alive())
        request.version = self._parser.get_http_version()
        length = request.headers.get("content-length")
        if length is not None and length.isdigit():
            request.content_length = int(length)
        if request.headers.get("expect", "").lower() == "100-continue":
            request.body.expect_continue = True
        self._queue.append(request)
        if len(self._queue) > MAX_PIPELINED:
            self.pause_reading()
        if (
            self._fast is not None
            and len(self._queue) == 1
            and not self._busy
            and not request.body.expect_continue
            and (request.content_length or 0) <= FAST_BODY_LIMIT
        ):
            self._deferred = request
            return
        self._start_worker()

    def _start_worker(self) -> None:
        if self._fast_active:
            return  # finish_fast starts it for what queued up meanwhile
        if self._worker is None:
            self._worker = self._loop.create_task(self._serve())
        else:
            self._wake_worker()

    def on_body(self, body: bytes) -> None:
        if self._current is not None:
            self._current.body.feed(body)

    def on_message_complete(self) -> None:
        request = self._current
        if request is None:
            return
        request.body.finish()
        self._current = None
        if self._deferred is request:
            self._deferred = None
            assert self._fast is not None
            self._busy = self._fast_active = True
            if not self._fast(request, Response(request)):
                self.fall_back()

    # -- the fast handler's side ------------------------------------------------------------

    def fall_back(self) -> None:
        """The fast handler gave the request up before answering: the worker serves it."""
        self._fast_active = False
        self._busy = False
        if not self._closing:
            self._start_worker()

    def finish_fast(self, request: Request, response: Response) -> None:
        """The fast handler answered the request at the head of the queue."""
        self._fast_active = False
        self._busy = False
        if self._queue and self._queue[0] is request:
            self._queue.popleft()
        if self._closing:
            return
        if response.close_after or not request.keep_alive or self._eof or self.draining:
            self._close()
            return
        if self._reading_paused:
            self.resume_reading()
        if self._queue:
            self._start_worker()
        else:
            self._arm_idle_timer()

    # -- serving ----------------------------------------------------------------------------

    async def _serve(self) -> None:
        try:
            while not self._closing:
                if not self._queue:
                    self._busy = False
                    self._arm_idle_timer()
                    self._more = self._loop.create_future()
                    await self._more
                    self._more = None
                    continue
                self._busy = True
                request = self._queue[0]
                response = Response(request)
                try:
                    await self._handler(request, response)
                except (ConnectionError, ClientGone, asyncio.CancelledError):
                    self._abort()
                    return
                except Exception:
                    log.exception("request handler failed")
                    if not response.started:
                        response.close_after = True
                        response.send(500, [(b"content-type", b"text/plain")], b"internal error")
                    self._abort()
                    return
                self._queue.popleft()
                if response.started and not response.finished:
                    self._abort()
                    return
                if not request.body.complete:
                    self._linger()
                    return
                if response.close_after or not request.keep_alive or self._eof or self.draining:
                    self._close()
                    return
                if self._reading_paused:
                    self.resume_reading()
        finally:
            self._busy = False
            self._worker = None
            self._more = None

    def _bad_request(self) -> None:
        if self._transport is None:
            return
        request = self._current or Request(self, "GET", b"/")
        request.keep_alive = False
        response = Response(request)
        response.close_after = True
        self._on_bad_request(response)
        self._close()

    # -- helpers ----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    async def drain(self) -> None:
        if self._transport is None:
            raise ConnectionResetError("client disconnected")
        if self._writing_paused is not None:
            await self._writing_paused

    def pause_reading(self) -> None:
        if self._transport is not None and not self._reading_paused:
            self._reading_paused = True
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and self._reading_paused:
            self._reading_paused = False
            self._transport.resume_reading()

    def _arm_idle_timer(self) -> None:
        """Note activity; one timer per connection re-checks it (no timer per request)."""
        if self._transport is None or self._busy:
            return
        self._last_active = self._loop.time()
        if self._idle_timer is None:
            self._idle_timer = self._loop.call_later(KEEPALIVE_SECONDS, self._idle_check)

    def _idle_check(self) -> None:
        self._idle_timer = None
        if self._transport is None:
            return
        idle = self._loop.time() - self._last_active
        if not self._busy and idle >= KEEPALIVE_SECONDS:
            self._close()
            return
        remaining = max(KEEPALIVE_SECONDS - idle, 1.0)
        self._idle_timer = self._loop.call_later(remaining, self._idle_check)

    def _linger(self) -> None:
        """Answered before the body was read: drain what the client still sends, then close.

        Closing at once would reset the connection and the client could lose the answer.
        """
        self._closing = True
        self._discarding = True
        self._queue.clear()
        transport = self._transport
        if transport is None:
            return
        self.resume_reading()
        if transport.can_write_eof():
            transport.write_eof()
        self._loop.call_later(LINGER_SECONDS, self._abort)

    def _close(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        self._abort()

    def start_draining(self, close_idle: bool = True) -> None:
        """Answer with `connection: close` from now on; `close_idle` closes it if it is idle."""
        self.draining = True
        if close_idle and not self._busy and not self._queue and self._current is None:
            self._close()

    def _abort(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.abort()


class ConnectionRegistry:
    """The open client connections of one listener, so that stopping can drain them."""

    def __init__(self) -> None:
        self.connections: set[ServerConnection] = set()
        self.draining = False

    def drain(self, close_idle: bool = True) -> None:
        """Every answer from now on says `connection: close`; idle connections close now
        (with `close_idle`), the others after their answer."""
        self.draining = True
        for connection in list(self.connections):
            connection.start_draining(close_idle)

    def __len__(self) -> int:
        return len(self.connections)


async def serve(
    handler: Handler,
    on_bad_request: Callable[[Response], None],
    host: str,
    port: int,
    ssl_context: Any = None,
    *,
    fast: FastHandler | None = None,
    registry: ConnectionRegistry | None = None,
) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: ServerConnection(handler, on_bad_request, fast, registry),
        host,
        port,
        ssl=ssl_context,
        reuse_address=True,
        backlog=2048,
    )


def close_quietly(transport: asyncio.BaseTransport | None) -> None:
    with contextlib.suppress(Exception):
        if transport is not None:
            transport.close()
