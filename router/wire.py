"""What the router puts on the wire for v1 clients and replicas: request ids, error answers,
the replica's request head, and the scoring deadline."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid

from router.messages import Request, Response, header_lines

REQUEST_ID = "x-ms-request-id"
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
HOP_BY_HOP_BYTES = frozenset(name.encode() for name in HOP_BY_HOP)
JSON = [(b"content-type", b"application/json")]
TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
JSON_LINES = header_lines(JSON)
TEXT_LINES = header_lines(TEXT)
REQUEST_LINES = {
    (method, route): f"{method} {route} HTTP/1.1\r\n".encode()
    for method in ("GET", "POST")
    for route in ("/score", "/swagger.json")
}


def error(
    response: Response,
    status: int,
    message: str,
    close: bool = False,
    lines: list[bytes] | None = None,
) -> None:
    response.close_after = close
    body = json.dumps({"error": message}).encode()
    response.send_lines(status, [*JSON_LINES, *(lines or ())], body)


class RequestIds:
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


new_request_id = RequestIds()


def upstream_head(request: Request, path: str, id_line: bytes) -> bytes:
    """Request line and headers for the replica (Host and framing are added per hop)."""
    if request.query:
        line = f"{request.method} {path}?{request.query} HTTP/1.1\r\n".encode("latin-1")
    else:
        line = REQUEST_LINES.get((request.method, path)) or (
            f"{request.method} {path} HTTP/1.1\r\n".encode("latin-1")
        )
    lines = [line]
    for name, value in request.raw_headers:
        if name not in HOP_BY_HOP_BYTES:
            lines.append(b"%s: %s\r\n" % (name, value))
    lines.append(id_line)
    remote = request.connection.remote_bytes
    if remote:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            lines.append(b"x-forwarded-for: %s, %s\r\n" % (forwarded.encode("latin-1"), remote))
        else:
            lines.append(b"x-forwarded-for: %s\r\n" % remote)
    return b"".join(lines)


class Deadline:
    """`scoring_timeout_ms` for one request: a timer that cancels the connection's task.

    What `asyncio.timeout` does, without its per-request Python machinery: `expire` marks the
    cancellation as ours, `uncancel` tells the handler whether it was and undoes the count.
    """

    __slots__ = ("expired", "task")

    def __init__(self, task: asyncio.Task[None] | None) -> None:
        self.task = task
        self.expired = False

    def expire(self) -> None:
        if self.task is not None and not self.task.done():
            self.expired = True
            self.task.cancel()

    def uncancel(self) -> bool:
        if self.expired and self.task is not None:
            self.task.uncancel()
            return True
        return False


def request_id_of(id_line: bytes) -> str:
    return id_line[len(b"x-ms-request-id: ") : -2].decode("latin-1")
