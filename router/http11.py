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
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from typing import Any, cast

import httptools

log = logging.getLogger(__name__)

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
MAX_PIPELINED = 16
KEEPALIVE_SECONDS = 75.0
LINGER_SECONDS = 5.0
LINGER_BYTES = 256 * 1024 * 1024
Headers = list[tuple[bytes, bytes]]

BODILESS = frozenset({204, 304})
LOOKED_UP = frozenset(
    {b"authorization", b"content-length", b"expect", b"x-ms-request-id", b"x-forwarded-for"}
)
_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}


class ClientGone(Exception):
    """The client closed its connection before the request body was complete."""


class BodyReader:
    """The request body as it arrives; reading it resumes the socket when the buffer drains."""

    def __init__(self, connection: ServerConnection) -> None:
        self._connection = connection
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self.complete = False
        self.failed = False
        self.expect_continue = False

    def feed(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        if self._buffered > HIGH_WATER:
            self._connection.pause_reading()
        self._wake()

    def finish(self, failed: bool = False) -> None:
        self.complete = True
        self.failed = failed
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self) -> bytes:
        """The next chunk, or b"" at the end; raises ConnectionResetError if the client left."""
        if self.expect_continue:
            self.expect_continue = False
            self._connection.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        while not self._chunks:
            if self.complete:
                if self.failed:
                    raise ClientGone("the client went away while sending the body")
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._buffered < LOW_WATER:
            self._connection.resume_reading()
        return chunk

    async def read_all(self) -> bytes:
        parts = []
        while chunk := await self.read():
            parts.append(chunk)
        return b"".join(parts)


class Request:
    """One parsed request head.

    `raw_headers` holds every header as sent (names lower-cased) for forwarding; `headers`
    decodes only the few the router reads, which keeps the per-request cost down.
    """

    __slots__ = (
        "body",
        "cancel_on_disconnect",
        "connection",
        "content_length",
        "headers",
        "keep_alive",
        "method",
        "path",
        "query",
        "raw_headers",
        "remote",
        "version",
    )

    def __init__(self, connection: ServerConnection, method: str, target: bytes) -> None:
        self.connection = connection
        self.method = method
        path, _, query = target.partition(b"?")
        self.path = path.decode("latin-1")
        self.query = query.decode("latin-1")
        self.headers: dict[str, str] = {}  # only the LOOKED_UP names, decoded
        self.raw_headers: list[tuple[bytes, bytes]] = []  # all of them, names lower-case
        self.content_length: int | None = None
        self.keep_alive = True
        self.version = "1.1"
        self.remote = connection.remote
        self.body = BodyReader(connection)
        self.cancel_on_disconnect: asyncio.Task[Any] | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


class Response:
    """Writes one response on the connection: whole (`send`) or streamed (`start`/`write`)."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self._connection = request.connection
        self.status = 0
        self.started = False
        self.finished = False
        self.close_after = False
        self._chunked = False
        self.bytes_sent = 0

    def _head(self, status: int, headers: Iterable[tuple[bytes, bytes]], framing: bytes) -> bytes:
        self.status = status
        self.started = True
        keep_alive = self._request.keep_alive and not self.close_after
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))]
        lines.extend(b"%s: %s\r\n" % (name, value) for name, value in headers)
        lines.append(framing)
        lines.append(
            b"connection: keep-alive\r\n\r\n" if keep_alive else b"connection: close\r\n\r\n"
        )
        return b"".join(lines)

    def send(self, status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes = b"") -> None:
        if status in BODILESS:
            body = b""
            framing = b""
        else:
            framing = b"content-length: %d\r\n" % len(body)
        head = self._head(status, headers, framing)
        self._connection.write(head + body)
        self.bytes_sent = len(body)
        self.finished = True

    def start(
        self, status: int, headers: Iterable[tuple[bytes, bytes]], length: int | None
    ) -> None:
        if status in BODILESS:
            framing = b""
        elif length is None and self._request.version == "1.0":
            self.close_after = True
            framing = b""
        elif length is None:
            self._chunked = True
            framing = b"transfer-encoding: chunked\r\n"
        else:
            framing = b"content-length: %d\r\n" % length
        self._connection.write(self._head(status, headers, framing))

    async def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.bytes_sent += len(chunk)
        if self._chunked:
            self._connection.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        else:
            self._connection.write(chunk)
        await self._connection.drain()

    def end(self) -> None:
        if self._chunked:
            self._connection.write(b"0\r\n\r\n")
        self.finished = True


Handler = Callable[[Request, Response], Awaitable[None]]


class ServerConnection(asyncio.Protocol):
    """One client connection: parses requests and hands them, in order, to the handler."""

    def __init__(self, handler: Handler, on_bad_request: Callable[[Response], None]) -> None:
        self._handler = handler
        self._on_bad_request = on_bad_request
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._header_name = b""
        self._current: Request | None = None
        self._queue: deque[Request] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._reading_paused = False
        self._writing_paused: asyncio.Future[None] | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._last_active = 0.0
        self._closing = False
        self._discarding = False
        self._discarded = 0
        self._eof = False
        self.remote = ""

    # -- transport events -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        peer = transport.get_extra_info("peername")
        self.remote = str(peer[0]) if peer else ""
        self._arm_idle_timer()

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            self._discarded += len(data)
            if self._discarded > LINGER_BYTES:
                self._abort()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._bad_request()
        except httptools.HttpParserError:
            self._bad_request()

    def eof_received(self) -> bool:
        """The client stopped sending: like nginx, take it as leaving for what still waits in
        the queue; what a replica already works on is answered, then the connection closes."""
        self._eof = True
        if self._current is not None and not self._current.body.complete:
            self._current.body.finish(failed=True)
        self._cancel_waiting()
        return self._worker is not None

    def _cancel_waiting(self) -> None:
        for waiting in (self._current, *self._queue):
            if waiting is not None and waiting.cancel_on_disconnect is not None:
                waiting.cancel_on_disconnect.cancel()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._transport = None
        self._cancel_waiting()
        if self._current is not None:
            self._current.body.finish(failed=not self._current.body.complete)
        for request in self._queue:
            request.body.finish(failed=not request.body.complete)
        if self._writing_paused is not None and not self._writing_paused.done():
            self._writing_paused.set_exception(ConnectionResetError("client disconnected"))
        if self._idle_timer is not None:
            self._idle_timer.cancel()

    def pause_writing(self) -> None:
        self._writing_paused = asyncio.get_running_loop().create_future()

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
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._serve())

    def on_body(self, body: bytes) -> None:
        if self._current is not None:
            self._current.body.feed(body)

    def on_message_complete(self) -> None:
        if self._current is not None:
            self._current.body.finish()
            self._current = None

    # -- serving ----------------------------------------------------------------------------

    async def _serve(self) -> None:
        try:
            while self._queue and not self._closing:
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
                if response.close_after or not request.keep_alive or self._eof:
                    self._close()
                    return
                self.resume_reading()
        finally:
            self._worker = None
            self._arm_idle_timer()

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
        if self._transport is None or self._worker is not None:
            return
        loop = asyncio.get_running_loop()
        self._last_active = loop.time()
        if self._idle_timer is None:
            self._idle_timer = loop.call_later(KEEPALIVE_SECONDS, self._idle_check)

    def _idle_check(self) -> None:
        self._idle_timer = None
        if self._transport is None:
            return
        idle = asyncio.get_running_loop().time() - self._last_active
        if self._worker is None and idle >= KEEPALIVE_SECONDS:
            self._close()
            return
        remaining = max(KEEPALIVE_SECONDS - idle, 1.0)
        self._idle_timer = asyncio.get_running_loop().call_later(remaining, self._idle_check)

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
        asyncio.get_running_loop().call_later(LINGER_SECONDS, self._abort)

    def _close(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    def _abort(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.abort()


async def serve(
    handler: Handler,
    on_bad_request: Callable[[Response], None],
    host: str,
    port: int,
    ssl_context: Any = None,
) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: ServerConnection(handler, on_bad_request),
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
