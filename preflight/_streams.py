"""One connection per host and port, carried from check to check.

The TCP check connects, the TLS check handshakes on that connection, and the HTTP check
sends its GET over the same TLS session: one TCP connect and one handshake per endpoint
instead of three and two. A TLS handshake costs about a millisecond of CPU, so for a plan
of a thousand endpoints this saves about a third of the run's CPU time.
`ProbeTransport` is the httpx transport that finds the parked session (or opens a fresh
one) for a request.
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


async def _ready(sock: socket.socket, *, write: bool, timeout: float | None) -> None:
    """Wait until the event loop sees `sock` readable (or writable)."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()

    def wake() -> None:
        if not waiter.done():
            waiter.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        async with asyncio.timeout(timeout):
            await waiter
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


class SocketStream(httpcore.AsyncNetworkStream):
    """An httpcore network stream over a non-blocking socket, plain or TLS.

    It drives `ssl.SSLSocket` straight from the event loop's readiness callbacks instead
    of asyncio's TLS transport, which copies every record through Python buffers: that
    saves about a tenth of the CPU a handshake costs.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        while True:
            try:
                return self._sock.recv(max_bytes)
            except (ssl.SSLWantReadError, BlockingIOError):
                await self._wait(write=False, timeout=timeout, error=httpcore.ReadTimeout)
            except ssl.SSLWantWriteError:
                await self._wait(write=True, timeout=timeout, error=httpcore.ReadTimeout)
            except OSError as exc:
                raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        while view:
            try:
                view = view[self._sock.send(view) :]
            except (ssl.SSLWantWriteError, BlockingIOError):
                await self._wait(write=True, timeout=timeout, error=httpcore.WriteTimeout)
            except ssl.SSLWantReadError:
                await self._wait(write=False, timeout=timeout, error=httpcore.WriteTimeout)
            except OSError as exc:
                raise httpcore.WriteError(str(exc)) from exc

    async def _wait(
        self, *, write: bool, timeout: float | None, error: type[httpcore.TimeoutException]
    ) -> None:
        try:
            await _ready(self._sock, write=write, timeout=timeout)
        except TimeoutError as exc:
            raise error(f"no progress within {timeout} s") from exc

    async def aclose(self) -> None:
        self._sock.close()

    def close_now(self) -> None:
        self._sock.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.UnsupportedProtocol("the stream is already set up")

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._sock if isinstance(self._sock, ssl.SSLSocket) else None
        if info == "socket":
            return self._sock
        if info == "client_addr":
            return self._sock.getsockname()
        if info == "server_addr":
            return self._sock.getpeername()
        if info == "is_readable":
            return False
        return None


async def wrap(sock: socket.socket, tls: ssl.SSLContext | None, server_name: str) -> SocketStream:
    """A stream over a connected socket, after a TLS handshake when `tls` is given.
    On failure the socket is closed and the `OSError` (an `ssl.SSLError` for TLS) raised."""
    if tls is None:
        return SocketStream(sock)
    try:
        tls_sock = tls.wrap_socket(sock, server_hostname=server_name, do_handshake_on_connect=False)
    except BaseException:
        sock.close()
        raise
    try:
        while True:
            try:
                tls_sock.do_handshake()
                break
            except ssl.SSLWantReadError:
                await _ready(tls_sock, write=False, timeout=None)
            except ssl.SSLWantWriteError:
                await _ready(tls_sock, write=True, timeout=None)
    except BaseException:
        tls_sock.close()
        raise
    return SocketStream(tls_sock)


class ConnectionPark:
    """Connections one check leaves for the next one of the same chain."""

    def __init__(self) -> None:
        self._parked: dict[ParkKey, socket.socket | SocketStream] = {}

    def park(self, key: ParkKey, connection: socket.socket | SocketStream) -> None:
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

    def take_stream(self, key: ParkKey) -> SocketStream | None:
        found = self._parked.pop(key, None)
        if found is None or isinstance(found, SocketStream):
            return found
        _discard(found)
        return None

    def close(self) -> None:
        for connection in self._parked.values():
            _discard(connection)
        self._parked.clear()


def _discard(connection: socket.socket | SocketStream) -> None:
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
        # httpx drops a default port from the URL (https://x:443/ → port None): name it,
        # or the connection's origin and the request's would disagree.
        port = url.port or (443 if url.scheme == "https" else 80)
        origin = httpcore.Origin(url.raw_scheme, url.raw_host, port)
        connection = httpcore.AsyncHTTP11Connection(origin=origin, stream=stream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=port, target=url.raw_path
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
