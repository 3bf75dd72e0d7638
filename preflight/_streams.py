"""One connection per host and port, carried from check to check.

The TCP check connects, the TLS check handshakes on that connection, and the HTTP check
sends its GET over the same TLS session: one TCP connect and one handshake per endpoint
instead of three and two. A TLS handshake costs about a millisecond of CPU, so for a plan
of a thousand endpoints this saves about a third of the run's CPU time.
"""

from __future__ import annotations

import asyncio
import socket
import ssl

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


async def _ready(sock: socket.socket, *, write: bool) -> None:
    """Wait until the event loop sees `sock` readable (or writable). The probes bound
    every wait with their own timeout."""
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
        await waiter
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


class SocketStream:
    """A connected non-blocking socket, plain or TLS, driven straight from the event
    loop's readiness callbacks. asyncio's TLS transport copies every record through
    Python buffers, which costs about a tenth of what a handshake does."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @property
    def ssl_object(self) -> ssl.SSLSocket | None:
        return self.sock if isinstance(self.sock, ssl.SSLSocket) else None

    async def read(self, max_bytes: int) -> bytes:
        """Up to `max_bytes`; b"" when the peer closed the connection."""
        while True:
            try:
                return self.sock.recv(max_bytes)
            except (ssl.SSLWantReadError, BlockingIOError):
                await _ready(self.sock, write=False)
            except ssl.SSLWantWriteError:
                await _ready(self.sock, write=True)

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view) :]
            except (ssl.SSLWantWriteError, BlockingIOError):
                await _ready(self.sock, write=True)
            except ssl.SSLWantReadError:
                await _ready(self.sock, write=False)

    def close(self) -> None:
        self.sock.close()


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
                await _ready(tls_sock, write=False)
            except ssl.SSLWantWriteError:
                await _ready(tls_sock, write=True)
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
            previous.close()
        self._parked[key] = connection

    def take_socket(self, key: ParkKey) -> socket.socket | None:
        found = self._parked.pop(key, None)
        if found is None or isinstance(found, socket.socket):
            return found
        found.close()
        return None

    def take_stream(self, key: ParkKey) -> SocketStream | None:
        found = self._parked.pop(key, None)
        if found is None or isinstance(found, SocketStream):
            return found
        found.close()
        return None

    def close(self) -> None:
        for connection in self._parked.values():
            connection.close()
        self._parked.clear()


async def connect(
    address: str, port: int, server_name: str, tls: ssl.SSLContext | None, park: ConnectionPark
) -> SocketStream:
    """The connection for a request to `server_name` at `address`: the session the TLS
    check left, the socket the TCP check left (handshaking on it), or a new one."""
    if tls is not None:
        stream = park.take_stream(("tls", server_name, address, port))
        if stream is not None:
            return stream
    sock = park.take_socket(("tcp", server_name, address, port))
    if sock is None:
        sock = await open_socket(address, port)
    return await wrap(sock, tls, server_name)
