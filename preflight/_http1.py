"""The HTTP probe's own exchange on a direct connection: one GET, the response head
parsed with httptools (llhttp, the parser uvicorn uses), the body never read.

Any status proves the service answers, so the probe needs only the status line and two
headers. httpx and httpcore build a request, URL, header and response model per GET,
which cost more CPU than the TLS handshake before it; they remain the path through a
proxy and through an injected transport.
"""

from __future__ import annotations

from dataclasses import dataclass

import httptools

from preflight._streams import SocketStream

_READ = 65536
_MAX_HEAD = 64 * 1024


class ResponseError(Exception):
    """The peer's bytes are no HTTP/1.x response head."""


@dataclass(frozen=True, slots=True)
class Head:
    status_code: int
    http_version: str  # "HTTP/1.1", as httpx writes it
    server: str | None


def request(host_header: str, user_agent: str) -> bytes:
    return (
        f"GET / HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {user_agent}\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


class _HeadReader:
    """httptools callbacks: the Server header(s), and the first final head."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.server: list[str] = []
        self.head: Head | None = None

    def on_message_begin(self) -> None:
        self.server = []

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"server":
            self.server.append(value.decode("latin-1").strip(" \t"))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if self.head is None and (not 100 <= status < 200 or status == 101):
            # Interim responses (103 Early Hints) are read past, as httpx does.
            server = ", ".join(self.server) if self.server else None
            self.head = Head(status, f"HTTP/{self.parser.get_http_version()}", server)


async def exchange(stream: SocketStream, host_header: str, user_agent: str) -> Head:
    """Send the GET, read up to the end of the final (not 1xx) response head."""
    await stream.write(request(host_header, user_agent))
    reader = _HeadReader()
    received = 0
    while reader.head is None:
        data = await stream.read(_READ)
        if not data:
            raise ResponseError("the server closed the connection without a response")
        received += len(data)
        try:
            reader.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # 101 Switching Protocols: its head is complete, which is all we need
        except httptools.HttpParserError as exc:
            if reader.head is None:  # what follows a complete head does not matter
                raise ResponseError(f"not an HTTP response: {exc}") from exc
        if reader.head is None and received > _MAX_HEAD:
            raise ResponseError(f"no end of the response head in {_MAX_HEAD} bytes")
    return reader.head
