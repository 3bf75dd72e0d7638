"""One connection per host and port, carried from check to check.

The TCP check connects, the TLS check handshakes on that connection, and the HTTP check
sends its GET over the same TLS session: one TCP connect and one handshake per endpoint
instead of three and two. A TLS handshake costs about a millisecond of CPU, so for a plan
of a thousand endpoints this halves the run's CPU time. `ProbeTransport` is the httpx
transport that finds the parked session (or opens a fresh one) for a request.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpcore
import httpx

ParkKey = tuple[str, str, str, int]  # (layer, host name, address, port)


async def open_socket(address: str, port: int) -> socket.socket:
    """A connected non-blocking socket: the cheapest way to prove a port answers."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (address, port))
    except BaseException:
        sock.close()
        raise
    return sock


class AsyncioStream(httpcore.AsyncNetworkStream):
    """An httpcore network stream over asyncio's streams (plain or TLS)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            self._writer.write(buffer)
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        self._writer.close()

    def close_now(self) -> None:
        self._writer.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.UnsupportedProtocol("the stream is already set up")

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        if info == "is_readable":
            return False
        return None


async def wrap(sock: socket.socket, tls: ssl.SSLContext | None, server_name: str) -> AsyncioStream:
    """Streams over a connected socket, after a TLS handshake when `tls` is given."""
    try:
        reader, writer = await asyncio.open_connection(
            sock=sock, ssl=tls, server_hostname=server_name if tls else None
        )
    except BaseException:
        sock.close()
        raise
    return AsyncioStream(reader, writer)


class ConnectionPark:
    """Connections one check leaves for the next one of the same chain."""

    def __init__(self) -> None:
        self._parked: dict[ParkKey, socket.socket | AsyncioStream] = {}

    def park(self, key: ParkKey, connection: socket.socket | AsyncioStream) -> None:
        previous = self._parked.pop(key, None)
        if previous is not None:
            _discard(previous)
        self._parked[key] = connection

    def take_socket(self, key: ParkKey) -> socket.socket | None:
        found = self._parked.pop(key, None)
        if found is None or isinstance(found, socket.socket):
            return found
        _discard(found)
        return None

    def take_stream(self, key: ParkKey) -> AsyncioStream | None:
        found = self._parked.pop(key, None)
        if found is None or isinstance(found, AsyncioStream):
            return found
        _discard(found)
        return None

    def discard(self, key: ParkKey) -> None:
        found = self._parked.pop(key, None)
        if found is not None:
            _discard(found)

    def close(self) -> None:
        for connection in self._parked.values():
            _discard(connection)
        self._parked.clear()

    def __len__(self) -> int:
        return len(self._parked)


def _discard(connection: socket.socket | AsyncioStream) -> None:
    if isinstance(connection, socket.socket):
        connection.close()
    else:
        connection.close_now()


_HTTPCORE_TO_HTTPX: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
)


def _as_httpx(exc: Exception, request: httpx.Request) -> Exception | None:
    """httpx's exception for an httpcore one, as httpx's own transport would raise."""
    for core, mapped in _HTTPCORE_TO_HTTPX:
        if isinstance(exc, core):
            if issubclass(mapped, httpx.RequestError):
                return mapped(str(exc), request=request)
            return mapped(str(exc))
    return None


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: httpcore.Response, connection: httpcore.AsyncHTTP11Connection):
        self._response = response
        self._connection = connection

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.aiter_stream():
            yield chunk

    async def aclose(self) -> None:
        await self._response.aclose()
        await self._connection.aclose()


class ProbeTransport(httpx.AsyncBaseTransport):
    """Sends each request on its own connection: the parked one of the request's host
    name (the `sni_hostname` extension), address and port, or a fresh one. Never pooled,
    so two names on one address never share a connection or an SNI."""

    def __init__(self, park: ConnectionPark, tls: Callable[[], ssl.SSLContext]) -> None:
        self._park = park
        self._tls = tls

    async def _connect(self, request: httpx.Request) -> httpcore.AsyncNetworkStream:
        address = request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        name = str(request.extensions.get("sni_hostname") or address)
        if request.url.scheme == "https":
            stream = self._park.take_stream(("tls", name, address, port))
            if stream is not None:
                return stream
            sock = self._park.take_socket(("tcp", name, address, port))
            if sock is None:
                sock = await open_socket(address, port)
            return await wrap(sock, self._tls(), name)
        sock = self._park.take_socket(("tcp", name, address, port))
        if sock is None:
            sock = await open_socket(address, port)
        return await wrap(sock, None, name)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        url = request.url
        try:
            stream = await self._connect(request)
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        origin = httpcore.Origin(url.raw_scheme, url.raw_host, url.port or 0)
        connection = httpcore.AsyncHTTP11Connection(origin=origin, stream=stream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = await connection.handle_async_request(core_request)
        except Exception as exc:
            await connection.aclose()
            mapped = _as_httpx(exc, request)
            if mapped is None:
                raise
            raise mapped from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response, connection),
            extensions=response.extensions,
        )
