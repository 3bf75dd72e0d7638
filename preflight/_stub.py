"""A stub resolver for the nameservers a run was given: A and AAAA in flight together,
one UDP socket per nameserver for the whole run, replies matched by id, source and
question, TCP when a reply comes back truncated.

It asks what dnspython's `Resolver` asked and reaches the same verdicts (the probe's
statuses must not change with the client): servers in the given order; one that answers
SERVFAIL, REFUSED or another error code, garbage, or a chain of 16 CNAMEs is dropped and
the next one asked; NOERROR and NXDOMAIN are final; one deadline (the probe timeout) for
the whole lookup. It costs a tenth of the CPU: no task, socket or `Message` per query.

A shared socket has one source port for the run, so ids are drawn from the system's
random source and a reply must also name the question it answers.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

import dns.rcode

from preflight._dnswire import (
    RCODE_NOERROR,
    RCODE_NXDOMAIN,
    RCODE_YXDOMAIN,
    BadName,
    ChainTooLong,
    Labels,
    MalformedReply,
    Reply,
    encode_name,
    encode_query,
    follow_chain,
    parse_reply,
    read_name,
)
from preflight._net import describe
from preflight.options import Nameserver

_MAX_DATAGRAM = 65535
# Queries one socket carries at once. Replies wait in the socket's receive buffer while
# the loop is busy; the default buffer (208 KiB) holds about 160 small datagrams, so
# more queries than this in flight open another socket instead of losing replies.
_PER_SOCKET = 64


class Verdict(Enum):
    ANSWER = "answer"
    NO_ANSWER = "no-answer"
    NXDOMAIN = "nxdomain"
    FAILED = "failed"  # every server failed: dnspython's NoNameservers
    TIMEOUT = "timeout"
    ERROR = "error"  # YXDOMAIN, or a name that has no wire form


@dataclass(slots=True)
class Outcome:
    """How the lookup of one record type ended, and who said so."""

    verdict: Verdict
    server: str | None = None
    addresses: list[str] = field(default_factory=list)
    cnames: list[Labels] = field(default_factory=list)
    detail: str = ""


@dataclass(slots=True, eq=False)
class _Query:
    future: asyncio.Future[Reply | BaseException | None]  # None: the deadline passed
    name: Labels
    rdtype: int
    query_id: int
    server: _ServerSocket


class _ServerSocket:
    """A UDP socket to one nameserver and the queries waiting for its replies."""

    def __init__(self, loop: asyncio.AbstractEventLoop, server: Nameserver) -> None:
        self.server = server
        self.label = str(server)
        self.peer = (server.address, server.port)
        family = socket.AF_INET6 if ":" in server.address else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.loop = loop
        self.pending: dict[int, _Query] = {}
        loop.add_reader(self.sock.fileno(), self._readable)

    def send(self, name: Labels, name_wire: bytes, rdtype: int) -> _Query:
        """Ask; the query's future gets the reply, an OSError, or None at the deadline."""
        query_id = secrets.randbits(16)
        while query_id in self.pending:
            query_id = secrets.randbits(16)
        query = _Query(self.loop.create_future(), name, rdtype, query_id, self)
        self.pending[query_id] = query
        try:
            self.sock.sendto(encode_query(query_id, name_wire, rdtype), self.peer)
        except OSError as exc:  # a local firewall (EPERM), no route, a full buffer
            query.future.set_result(exc)
        return query

    def forget(self, query: _Query) -> None:
        if self.pending.get(query.query_id) is query:
            del self.pending[query.query_id]

    def _readable(self) -> None:
        while True:
            try:
                data, source = self.sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # an error queued for an earlier datagram; the queries wait on
            if source[0] != self.peer[0] or source[1] != self.peer[1] or len(data) < 12:
                continue
            query = self.pending.get(int.from_bytes(data[:2], "big"))
            if query is None or query.future.done():
                continue
            try:
                reply = parse_reply(data)
            except MalformedReply as exc:
                query.future.set_result(exc)
                continue
            if reply.answers_query(query.name, query.rdtype):
                query.future.set_result(reply)

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        for query in self.pending.values():
            if not query.future.done():
                query.future.cancel()
        self.pending.clear()


def _expire(inflight: dict[int, _Query]) -> None:
    for query in inflight.values():
        if not query.future.done():
            query.future.set_result(None)


class StubResolver:
    """Looks names up at the given nameservers; `aclose` when the run is over."""

    def __init__(self, nameservers: Sequence[Nameserver]) -> None:
        if not nameservers:
            raise ValueError("a stub resolver needs at least one nameserver")
        self.nameservers = tuple(nameservers)
        self._sockets: list[list[_ServerSocket]] = [[] for _ in self.nameservers]

    def _send(self, index: int, name: Labels, name_wire: bytes, rdtype: int) -> _Query:
        """Ask server `index` on a socket with room for one more query."""
        sockets = self._sockets[index]
        chosen = next((s for s in sockets if len(s.pending) < _PER_SOCKET), None)
        if chosen is None:
            chosen = _ServerSocket(asyncio.get_running_loop(), self.nameservers[index])
            sockets.append(chosen)
        return chosen.send(name, name_wire, rdtype)

    async def lookup(self, host: str, rdtypes: Sequence[int], timeout: float) -> list[Outcome]:
        """One outcome per record type, in the order asked."""
        try:
            name_wire = encode_name(host)
        except BadName as exc:
            return [Outcome(Verdict.ERROR, detail=str(exc)) for _ in rdtypes]
        name = read_name(name_wire, 0)[0]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # Per record type: the index of the server asked now, and what the others said.
        asked = dict.fromkeys(rdtypes, 0)
        failures: dict[int, list[str]] = {t: [] for t in rdtypes}
        inflight = {t: self._send(0, name, name_wire, t) for t in rdtypes}
        outcomes: dict[int, Outcome] = {}
        timer = loop.call_at(deadline, _expire, inflight)
        try:
            while inflight:
                rdtype, query = next(iter(inflight.items()))
                result = await query.future
                del inflight[rdtype]
                query.server.forget(query)
                if isinstance(result, Reply) and result.truncated:
                    result = await self._over_tcp(query, name_wire, deadline)
                outcome = _judge(result, query, failures[rdtype])
                if outcome is not None:
                    outcomes[rdtype] = outcome
                    continue
                asked[rdtype] += 1
                if asked[rdtype] < len(self.nameservers) and loop.time() < deadline:
                    inflight[rdtype] = self._send(asked[rdtype], name, name_wire, rdtype)
                else:
                    detail = "no nameserver could answer: " + "; ".join(failures[rdtype])
                    outcomes[rdtype] = Outcome(Verdict.FAILED, detail=detail)
        finally:
            timer.cancel()
            for query in inflight.values():
                query.server.forget(query)
        return [outcomes[t] for t in rdtypes]

    async def _over_tcp(
        self, query: _Query, name_wire: bytes, deadline: float
    ) -> Reply | BaseException | None:
        """The same question over TCP to the same server (the UDP reply was truncated)."""
        server = query.server.server
        wire = encode_query(query.query_id, name_wire, query.rdtype)
        try:
            async with asyncio.timeout_at(deadline):
                reader, writer = await asyncio.open_connection(server.address, server.port)
                try:
                    writer.write(len(wire).to_bytes(2, "big") + wire)
                    size = int.from_bytes(await reader.readexactly(2), "big")
                    data = await reader.readexactly(size)
                finally:
                    writer.close()
        except TimeoutError:
            return None
        except (OSError, asyncio.IncompleteReadError) as exc:
            return exc
        try:
            reply = parse_reply(data)
        except MalformedReply as exc:
            return exc
        if reply.truncated:
            return MalformedReply("truncated over TCP")
        if reply.query_id != query.query_id or not reply.answers_query(query.name, query.rdtype):
            return MalformedReply("the TCP reply answers another question")
        return reply

    async def aclose(self) -> None:
        for sockets in self._sockets:
            for server_socket in sockets:
                server_socket.close()
            sockets.clear()


def _judge(
    result: Reply | BaseException | None, query: _Query, failures: list[str]
) -> Outcome | None:
    """The outcome a server's reply settles, or None when the next server is to be asked
    (the reason appended to `failures`)."""
    label = query.server.label
    if result is None:
        return Outcome(Verdict.TIMEOUT, detail=f"no reply from {label} within the timeout")
    if isinstance(result, BaseException):
        failures.append(f"{label}: {describe(result)}")
        return None
    if result.rcode == RCODE_NOERROR:
        try:
            addresses, cnames = follow_chain(result, query.name, query.rdtype)
        except ChainTooLong as exc:
            failures.append(f"{label}: {exc}")
            return None
        if addresses:
            return Outcome(Verdict.ANSWER, label, addresses, cnames)
        return Outcome(Verdict.NO_ANSWER, label, [], cnames, f"{label} has no such record")
    if result.rcode == RCODE_NXDOMAIN:
        return Outcome(Verdict.NXDOMAIN, label, detail=f"NXDOMAIN from {label}")
    if result.rcode == RCODE_YXDOMAIN:
        return Outcome(Verdict.ERROR, label, detail=f"YXDOMAIN from {label}")
    failures.append(f"{label} answered {dns.rcode.to_text(dns.rcode.Rcode.make(result.rcode))}")
    return None
