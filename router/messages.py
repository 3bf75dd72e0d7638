"""One HTTP/1.1 request and its response, as the router's server hands them to the handler.

`Request` keeps every header as sent for forwarding and decodes only the few the router
reads; `Response` writes a whole answer in one transport write, or streams it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from router.http11 import ServerConnection

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
BODILESS = frozenset({204, 304})
_STATUS_LINES = {
    status.value: b"HTTP/1.1 %d %s\r\n" % (status.value, status.phrase.encode())
    for status in HTTPStatus
}
_KEEP_ALIVE = b"connection: keep-alive\r\n\r\n"
_CLOSE = b"connection: close\r\n\r\n"


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
            self._waiter = self._connection._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._buffered < LOW_WATER:
            self._connection.resume_reading()
        return chunk

    def peek_all(self) -> bytes:
        """The whole body of a complete request, left in place for a later `read`."""
        return b"".join(self._chunks)

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
        "claimed",
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
        # A replica slot claimed for this request before the general path took it over.
        self.claimed: Any = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def header_lines(headers: Iterable[tuple[bytes, bytes]]) -> list[bytes]:
    """`name: value` lines, the form responses are written from (a proxied response's
    headers arrive in this form already, so they are not split and joined again)."""
    return [b"%s: %s\r\n" % (name, value) for name, value in headers]


class Response:
    """Writes one response on the connection: whole (`send`) or streamed (`start`/`write`)."""

    __slots__ = (
        "_chunked",
        "_connection",
        "_request",
        "bytes_sent",
        "close_after",
        "finished",
        "started",
        "status",
    )

    def __init__(self, request: Request) -> None:
        self._request = request
        self._connection = request.connection
        self.status = 0
        self.started = False
        self.finished = False
        self.close_after = False
        self._chunked = False
        self.bytes_sent = 0

    def _write_head(self, status: int, lines: list[bytes], framing: bytes, body: bytes) -> None:
        """Status line, headers, framing and the first body bytes in one write."""
        self.status = status
        self.started = True
        keep_alive = (
            self._request.keep_alive and not self.close_after and not self._connection.draining
        )
        status_line = _STATUS_LINES.get(status) or b"HTTP/1.1 %d Unknown\r\n" % status
        self._connection.write(
            b"".join(
                (
                    status_line,
                    b"".join(lines),
                    framing,
                    _KEEP_ALIVE if keep_alive else _CLOSE,
                    body,
                )
            )
        )

    def send(self, status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes = b"") -> None:
        self.send_lines(status, header_lines(headers), body)

    def send_lines(self, status: int, lines: list[bytes], body: bytes = b"") -> None:
        if status in BODILESS:
            body = b""
            framing = b""
        else:
            framing = b"content-length: %d\r\n" % len(body)
        self._write_head(status, lines, framing, body)
        self.bytes_sent = len(body)
        self.finished = True

    def start(
        self, status: int, headers: Iterable[tuple[bytes, bytes]], length: int | None
    ) -> None:
        self.start_lines(status, header_lines(headers), length)

    def start_lines(self, status: int, lines: list[bytes], length: int | None) -> None:
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
        self._write_head(status, lines, framing, b"")

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

    def abort(self) -> None:
        """Cut the client's connection (a response that cannot be finished)."""
        self._connection.abort()
