"""Keep-alive HTTP/1.1 connections to the replicas, parsed with httptools.

`UpstreamPool.exchange()` sends one request and returns the response head; the body is read
from the returned `Exchange`. Failures before the replica sent a byte raise `ReplicaFailed`
(the caller may retry elsewhere); a stale kept-alive connection that the replica had closed is
retried once on a fresh connection first, since that says nothing about the replica's health.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Protocol, cast
from urllib.parse import urlsplit

import httptools

from router.errors import ReplicaFailed

Headers = list[tuple[bytes, bytes]]
CONNECT_TIMEOUT = 5.0
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024


class BodySource(Protocol):
    """A request body too large to hold: sent chunk by chunk, replayable while it was kept."""

    @property
    def replayable(self) -> bool: ...

    def chunks(self) -> AsyncIterator[bytes]: ...


class Exchange(asyncio.Protocol):
    """One connection to a replica; carries one request/response exchange at a time."""

    def __init__(self, pool: _ReplicaConnections) -> None:
        self._pool = pool
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.reused = False
        self.status = 0
        self.headers: Headers = []
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
        except httptools.HttpParserError:
            self._fail()
            if self.transport is not None:
                self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._pool.forget(self)
        if self._head is not None and not self._head.done():
            self._head.set_exception(ConnectionResetError("replica closed the connection"))
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
        self._write_paused = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._write_paused is not None and not self._write_paused.done():
            self._write_paused.set_result(None)
        self._write_paused = None

    # -- parser callbacks -------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        self.headers.append((lower, value))
        if lower == b"content-length" and value.isdigit():
            self.content_length = int(value)
        elif lower == b"transfer-encoding" and b"chunked" in value.lower():
            self._chunked = True

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.keep_alive = bool(self._parser.should_keep_alive())
        if self._head is not None and not self._head.done():
            self._head.set_result(None)

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

    # -- use --------------------------------------------------------------------------------

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self) -> None:
        self._failed = True
        self._wake()

    def _reset(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers = []
        self.content_length = None
        self._chunked = False
        self._chunks.clear()
        self._buffered = 0
        self._complete = False
        self._failed = False
        self._got_bytes = False
        self._head = asyncio.get_running_loop().create_future()

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
            self._waiter = asyncio.get_running_loop().create_future()
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

    async def read_all(self) -> bytes:
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
    def __init__(self, host: str, port: int, authority: bytes) -> None:
        self.host = host
        self.port = port
        self.authority = authority
        self.closed = False
        self._idle: list[Exchange] = []

    async def take(self, fresh: bool) -> Exchange:
        while self._idle and not fresh:
            exchange = self._idle.pop()
            if exchange.transport is not None and not exchange.transport.is_closing():
                exchange.reused = True
                exchange._reset()
                return exchange
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                _, exchange = await loop.create_connection(
                    lambda: Exchange(self), self.host, self.port
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
    """Connections to every replica, kept alive between requests."""

    def __init__(self) -> None:
        self._replicas: dict[str, _ReplicaConnections] = {}

    def _connections(self, base_url: str) -> _ReplicaConnections:
        connections = self._replicas.get(base_url)
        if connections is None:
            parts = urlsplit(base_url)
            host = parts.hostname or "127.0.0.1"
            port = parts.port or 80
            connections = _ReplicaConnections(host, port, parts.netloc.encode("idna"))
            self._replicas[base_url] = connections
        return connections

    async def exchange(self, base_url: str, head: bytes, body: bytes | BodySource) -> Exchange:
        """Send `head` (request line and headers, without Host) and the body; await the head."""
        connections = self._connections(base_url)
        for fresh in (False, True):
            exchange = await connections.take(fresh)
            try:
                payload = body if isinstance(body, bytes) else body.chunks()
                await self._send(exchange, connections.authority, head, payload)
                await exchange.response_head()
                return exchange
            except ConnectionResetError as exc:
                exchange.abort()
                if exchange.answered:
                    raise
                replayable = isinstance(body, bytes) or body.replayable
                if exchange.reused and replayable and not fresh:
                    continue
                raise ReplicaFailed("the replica closed the connection without answering") from exc
            except BaseException:
                exchange.abort()
                raise
        raise ReplicaFailed("the replica closed the connection without answering")

    @staticmethod
    async def _send(
        exchange: Exchange,
        authority: bytes,
        head: bytes,
        body: bytes | AsyncIterator[bytes] | None,
    ) -> None:
        host = b"host: %s\r\n" % authority
        if body is None or isinstance(body, bytes):
            payload = body or b""
            exchange.write(
                b"%s%scontent-length: %d\r\n\r\n%s" % (head, host, len(payload), payload)
            )
            return
        exchange.write(b"%s%stransfer-encoding: chunked\r\n\r\n" % (head, host))
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
