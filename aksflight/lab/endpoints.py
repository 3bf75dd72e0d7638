"""The lab's service endpoints: one process serving every host address on every port.

Run as ``python -m aksflight.lab.endpoints CONFIG.json`` inside the services namespace. HTTPS
ports answer a minimal HTTP/1.1 ``200`` (keep-alive handled by h11) with the host's own
certificate; plain HTTP ports the same without TLS; other ports (a database, say) only
accept connections. It prints ``ready`` on stdout once every listener is bound, then closes
stdout, so the parent knows the lab is usable without polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import h11
import trustme

from aksflight.lab.certs import Authority, issue_leaf

LOG = logging.getLogger("aksflight.lab.endpoints")
IDLE_TIMEOUT_S = 30.0
READ_CHUNK = 65536
MAX_HEADER_BYTES = 64 * 1024

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Listener:
    """One bound socket: a host name's address and port, what it speaks, who signs its cert."""

    host: str
    address: str
    port: int
    mode: str
    ca: str = "lab"
    names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What the lab wrote for this process: listeners, the two CAs, where leaves go."""

    listeners: list[Listener]
    authorities: dict[str, Authority]
    certs_dir: Path


def load_config(path: Path) -> WorkerConfig:
    """Read the config the lab wrote for this worker."""
    document = json.loads(path.read_text(encoding="utf-8"))
    listeners = [
        Listener(**{**entry, "names": tuple(entry.get("names", ()))})
        for entry in document["listeners"]
    ]
    authorities = {
        role: Authority(Path(paths["cert"]), Path(paths["key"]))
        for role, paths in document["authorities"].items()
    }
    return WorkerConfig(listeners, authorities, Path(document["certs_dir"]))


def _response_body(host: str, target: bytes) -> bytes:
    return f"aksflight lab endpoint {host} {target.decode('latin-1')}\n".encode()


async def _send(writer: asyncio.StreamWriter, connection: h11.Connection, event: h11.Event) -> None:
    data = connection.send(event)
    if data:
        writer.write(data)
        await writer.drain()


async def _serve_http(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str
) -> None:
    """HTTP/1.1 with keep-alive: answer 200 to every request until the client closes."""
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
    try:
        await _answer_requests(reader, writer, connection, host)
    except h11.RemoteProtocolError as exc:
        # h11 still lets the server send an error response after a client's protocol error.
        if connection.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            status = exc.error_status_hint
            headers = [("content-length", "0"), ("connection", "close")]
            await _send(writer, connection, h11.Response(status_code=status, headers=headers))
            await _send(writer, connection, h11.EndOfMessage())
        raise


async def _answer_requests(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    connection: h11.Connection,
    host: str,
) -> None:
    request: h11.Request | None = None
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            data = await asyncio.wait_for(reader.read(READ_CHUNK), IDLE_TIMEOUT_S)
            connection.receive_data(data)
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.EndOfMessage) and request is not None:
            body = _response_body(host, request.target)
            headers = [
                ("content-type", "text/plain; charset=utf-8"),
                ("content-length", str(len(body))),
                ("server", "aksflight-lab"),
            ]
            await _send(
                writer, connection, h11.Response(status_code=200, headers=headers, reason=b"OK")
            )
            if request.method != b"HEAD":
                await _send(writer, connection, h11.Data(data=body))
            await _send(writer, connection, h11.EndOfMessage())
            if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                return
            connection.start_next_cycle()
            request = None
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return


async def _serve_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept-only TCP (e.g. a database port): read and discard until the client leaves."""
    del writer
    while await asyncio.wait_for(reader.read(READ_CHUNK), IDLE_TIMEOUT_S):
        pass


def _handler(listener: Listener) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if listener.mode == "tcp":
                await _serve_tcp(reader, writer)
            else:
                await _serve_http(reader, writer, listener.host)
        except h11.RemoteProtocolError as exc:
            LOG.info("%s:%d bad request: %s", listener.host, listener.port, exc)
        except (TimeoutError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
                await writer.wait_closed()

    return handle


class TlsContexts:
    """One server context per host, with a certificate this worker issues for it.

    Endpoints present their own host's certificate whatever SNI the client sends, so a
    client that reached the wrong address sees a hostname mismatch, as it would for real.
    """

    def __init__(self, config: WorkerConfig) -> None:
        self._config = config
        self._cas: dict[str, trustme.CA] = {}
        self._contexts: dict[str, ssl.SSLContext] = {}

    def for_listener(self, listener: Listener) -> ssl.SSLContext:
        if listener.host not in self._contexts:
            if listener.ca not in self._cas:
                self._cas[listener.ca] = self._config.authorities[listener.ca].load()
            pem = issue_leaf(
                self._cas[listener.ca],
                list(listener.names or (listener.host,)),
                self._config.certs_dir / f"{listener.host}.pem",
            )
            # A bare server context: create_default_context would also load the system CA
            # store, once per host, which would dominate start-up for a thousand hosts.
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(pem)
            context.set_alpn_protocols(["http/1.1"])
            self._contexts[listener.host] = context
        return self._contexts[listener.host]


def _raise_file_limit(listeners: int) -> None:
    """A thousand hosts need more than the default 1024 descriptors (sockets + clients)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(soft, min(hard, listeners * 4 + 1024))
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _quiet_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    """Failed TLS handshakes are the point of the `ca="other"` hosts, not an error."""
    exception = context.get("exception")
    if isinstance(exception, ssl.SSLError | ConnectionError):
        LOG.info("%s", context.get("message"))
        return
    loop.default_exception_handler(context)


def _signal_ready() -> None:
    os.write(sys.stdout.fileno(), b"ready\n")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


async def serve(config: WorkerConfig) -> None:
    """Bind every listener, report ready, and serve until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_exception_handler)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    contexts = TlsContexts(config)
    servers: list[asyncio.Server] = []
    for listener in config.listeners:
        context = contexts.for_listener(listener) if listener.mode == "https" else None
        server = await asyncio.start_server(
            _handler(listener),
            host=listener.address,
            port=listener.port,
            ssl=context,
            reuse_address=True,
            backlog=1024,
        )
        servers.append(server)
    LOG.info("serving %d listeners", len(servers))
    _signal_ready()
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m aksflight.lab.endpoints CONFIG.json``."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if len(args) != 1:
        print("usage: python -m aksflight.lab.endpoints CONFIG.json", file=sys.stderr)
        return 2
    try:
        config = load_config(Path(args[0]))
        _raise_file_limit(len(config.listeners))
        asyncio.run(serve(config))
    except (OSError, ValueError, KeyError, TypeError, ssl.SSLError) as exc:
        print(f"endpoint server: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
