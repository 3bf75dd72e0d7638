"""Keep-alive HTTP/1.1 connections to the replicas, parsed with httptools.

`UpstreamPool.exchange()` sends one request and returns the response head; the body is read
from the returned `Exchange`. Failures before the replica sent a byte raise `ReplicaFailed`
(the caller may retry elsewhere); a stale kept-alive connection that the replica had closed is
retried once on a fresh connection first, since that says nothing about the replica's health.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Protocol, cast
from urllib.parse import urlsplit

import httptools

from router.errors import ReplicaFailed

log = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]
CONNECT_TIMEOUT = 5.0
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024


class BodySource(Protocol):
    """A request body too large to hold: sent chunk by chunk, replayable while it was kept."""

    @property
    def replayable(self) -> bool: ...

    def chunks(self) -> AsyncIterator[bytes]: ...


# Response headers a proxy sets again itself, never forwarded as they came.
HOP_BY_HOP_RESPONSE = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"content-length"}
)


class ExchangeListener(Protocol):
    """Told about an exchange's progress instead of a coroutine awaiting it (the fast path)."""

    buffer_limit: int

    def on_head(self) -> None:
        """The head of a response larger than `buffer_limit` (or of unknown size) arrived."""

    def on_complete(self) -> None:
        """The whole response arrived (its body is in `body_bytes()`)."""

    def on_failed(self) -> None:
        """The connection broke before the response was complete."""


class Exchange(asyncio.Protocol):
    """One connection to a replica; carries one request/response exchange at a time.

    The parser lives as long as the connection (llhttp parses one kept-alive response after
    the other). Response headers are kept both as pairs and as ready `name: value` lines
    without the hop-by-hop ones, which is what the router writes to its client.
    """

    def __init__(self, pool: _ReplicaConnections, loop: asyncio.AbstractEventLoop) -> None:
        self._pool = pool
        # The connection's loop, kept: on Python 3.11 every `asyncio.get_running_loop()`
        # costs a getpid() system call (a fork check), and a request would ask twice.
        self.loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self._drop = pool.drop_headers
        self.transport: asyncio.Transport | None = None
        self.reused = False
        self.status = 0
        self.headers: Headers = []
        self.forward_lines: list[bytes] = []
        self.listener: ExchangeListener | None = None
        self.content_length: int | None = None
        self._chunked = False
        self._head: asyncio.Future[None] | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._complete = False
        self._failed = False
        self._got_bytes = False
        self._paused = False
        self._write_paused: asyncio.Future[None] | None = None
        self.keep_alive = False

    # -- protocol ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if isinstance(exc, httptools.HttpParserCallbackError):  # the router's bug
                log.error("handling a replica's response failed", exc_info=exc.__context__ or exc)
            self._fail()
            if self.transport is not None:
                self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._pool.forget(self)
        if self._head is not None and not self._head.done():
            self._head.set_exception(ConnectionResetError("replica closed the connection"))
        listener = self.listener
        if listener is not None and not self._complete:
            self.listener = None
            listener.on_failed()
        if not self._complete:
            if self.status and self.content_length is None and not self._chunked:
                self._complete = True  # body delimited by the end of the connection
                self.keep_alive = False
            else:
                self._failed = True
        self._wake()
        if self._write_paused is not None and not self._write_paused.done():
            self._write_paused.set_exception(ConnectionResetError("replica closed the connection"))

    def pause_writing(self) -> None:
        self._write_paused = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._write_paused is not None and not self._write_paused.done():
            self._write_paused.set_result(None)
        self._write_paused = None

    # -- parser callbacks -------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        self.headers.append((lower, value))
        if lower not in self._drop:
            self.forward_lines.append(b"%s: %s\r\n" % (lower, value))
        elif lower == b"content-length" and value.isdigit():
            self.content_length = int(value)
        elif lower == b"transfer-encoding" and b"chunked" in value.lower():
            self._chunked = True

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.keep_alive = bool(self._parser.should_keep_alive())
        if self._head is not None and not self._head.done():
            self._head.set_result(None)
        listener = self.listener
        if listener is not None and (
            self.content_length is None or self.content_length > listener.buffer_limit
        ):
            self.listener = None
            listener.on_head()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and self.transport is not None and not self._paused:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self._complete = True
        self._wake()
        listener = self.listener
        if listener is not None:
            self.listener = None
            listener.on_complete()

    # -- use --------------------------------------------------------------------------------

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self) -> None:
        self._failed = True
        self._wake()

    def _reset(self, listener: ExchangeListener | None = None) -> None:
        self.status = 0
        self.headers = []
        self.forward_lines = []
        self.content_length = None
        self._chunked = False
        self._chunks.clear()
        self._buffered = 0
        self._complete = False
        self._failed = False
        self._got_bytes = False
        self.listener = listener
        self._head = None if listener is not None else self.loop.create_future()

    def write(self, data: bytes) -> None:
        if self.transport is None:
            raise ConnectionResetError("replica closed the connection")
        self.transport.write(data)

    async def drain(self) -> None:
        if self.transport is None:
            raise ConnectionResetError("replica closed the connection")
        if self._write_paused is not None:
            await self._write_paused

    async def response_head(self) -> None:
        assert self._head is not None
        await self._head

    @property
    def answered(self) -> bool:
        """True once the replica sent any byte of its response."""
        return self._got_bytes

    async def read(self) -> bytes:
        """The next body chunk, or b"" at the end."""
        while not self._chunks:
            if self._complete:
                return b""
            if self._failed:
                raise ConnectionResetError("replica closed the connection mid-response")
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered < LOW_WATER and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunk

    def body_bytes(self) -> bytes:
        """The body of a complete response (usual for a small one: it came with its head)."""
        parts = list(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def read_all(self) -> bytes:
        if self._complete:
            return self.body_bytes()
        parts = []
        while chunk := await self.read():
            parts.append(chunk)
        return b"".join(parts)

    def finish(self) -> None:
        """Give the connection back for reuse, or close it when it cannot be reused."""
        if self._complete and self.keep_alive and self.transport is not None:
            self._pool.put_back(self)
        else:
            self.abort()

    def abort(self) -> None:
        head = self._head
        if head is not None and head.done() and not head.cancelled():
            head.exception()  # retrieved: it was handled by whoever saw the failure
        elif head is not None:
            head.cancel()
        if self.transport is not None:
            self.transport.abort()
            self.transport = None
        self._pool.forget(self)


class _ReplicaConnections:
    def __init__(self, host: str, port: int, authority: bytes, drop_headers: frozenset[bytes]):
        self.host = host
        self.port = port
        self.host_line = b"host: %s\r\n" % authority
        self.drop_headers = drop_headers
        self.closed = False
        self._idle: list[Exchange] = []

    def take_idle(self, listener: ExchangeListener | None = None) -> Exchange | None:
        while self._idle:
            exchange = self._idle.pop()
            if exchange.transport is not None and not exchange.transport.is_closing():
                exchange.reused = True
                exchange._reset(listener)
                return exchange
        return None

    async def connect(self) -> Exchange:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                _, exchange = await loop.create_connection(
                    lambda: Exchange(self, loop), self.host, self.port
                )
        except (OSError, TimeoutError) as exc:
            raise ReplicaFailed(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        exchange._reset()
        return exchange

    def put_back(self, exchange: Exchange) -> None:
        if self.closed:
            exchange.abort()
        else:
            self._idle.append(exchange)

    def forget(self, exchange: Exchange) -> None:
        with contextlib.suppress(ValueError):
            self._idle.remove(exchange)

    def close(self) -> None:
        self.closed = True
        for exchange in list(self._idle):
            exchange.abort()
        self._idle.clear()


class UpstreamPool:
    """Connections to every replica, kept alive between requests.

    `drop_headers` are the response headers not forwarded (hop-by-hop ones always).
    """

    def __init__(self, drop_headers: frozenset[bytes] = HOP_BY_HOP_RESPONSE) -> None:
        self._replicas: dict[str, _ReplicaConnections] = {}
        self._drop = HOP_BY_HOP_RESPONSE | drop_headers

    def _connections(self, base_url: str) -> _ReplicaConnections:
        connections = self._replicas.get(base_url)
        if connections is None:
            parts = urlsplit(base_url)
            host = parts.hostname or "127.0.0.1"
            port = parts.port or 80
            connections = _ReplicaConnections(host, port, parts.netloc.encode("idna"), self._drop)
            self._replicas[base_url] = connections
        return connections

    def send_on_idle(
        self, base_url: str, head: bytes, body: bytes, listener: ExchangeListener
    ) -> Exchange | None:
        """Send on a kept-alive connection and report to `listener`; None when none is idle."""
        connections = self._replicas.get(base_url)
        if connections is None:
            return None
        exchange = connections.take_idle(listener)
        if exchange is None:
            return None
        exchange.write(
            b"%s%scontent-length: %d\r\n\r\n%s" % (head, connections.host_line, len(body), body)
        )
        return exchange

    async def exchange(self, base_url: str, head: bytes, body: bytes | BodySource) -> Exchange:
        """Send `head` (request line and headers, without Host) and the body; await the head."""
        connections = self._replicas.get(base_url) or self._connections(base_url)
        exchange = connections.take_idle()
        fresh = exchange is None
        if exchange is None:
            exchange = await connections.connect()
        while True:
            try:
                if isinstance(body, bytes):
                    exchange.write(
                        b"%s%scontent-length: %d\r\n\r\n%s"
                        % (head, connections.host_line, len(body), body)
                    )
                else:
                    await self._send_streamed(exchange, connections.host_line, head, body.chunks())
                assert exchange._head is not None
                await exchange._head
                return exchange
            except ConnectionResetError as exc:
                exchange.abort()
                if exchange.answered:
                    raise
                replayable = isinstance(body, bytes) or body.replayable
                if not (exchange.reused and replayable and not fresh):
                    raise ReplicaFailed(
                        "the replica closed the connection without answering"
                    ) from exc
            except BaseException:
                exchange.abort()
                raise
            exchange = await connections.connect()
            fresh = True

    @staticmethod
    async def _send_streamed(
        exchange: Exchange, host_line: bytes, head: bytes, body: AsyncIterator[bytes]
    ) -> None:
        exchange.write(b"%s%stransfer-encoding: chunked\r\n\r\n" % (head, host_line))
        async for chunk in body:
            if chunk:
                exchange.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await exchange.drain()
        exchange.write(b"0\r\n\r\n")

    def close(self) -> None:
        for connections in self._replicas.values():
            connections.close()
        self._replicas.clear()

    def drop(self, base_url: str) -> None:
        """A replica left or failed: close its idle connections (busy ones finish first)."""
        connections = self._replicas.pop(base_url, None)
        if connections is not None:
            connections.close()
