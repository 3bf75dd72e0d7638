"""The stub resolver against nameservers on loopback that answer as each test scripts
(built with dnspython), and against dnsmasq for many names at once."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import cast

import dns.flags
import dns.message
import dns.rcode
import dns.rrset

from preflight._dnswire import TYPE_A, TYPE_AAAA
from preflight._stub import Outcome, StubResolver, Verdict
from preflight.dns import probe_dns
from preflight.options import Nameserver, ProbeOptions
from rules.model import CheckKind, ProbeStatus
from tests.preflight.conftest import check, probe_once, run
from tests.preflight.servers import Dnsmasq

Script = Callable[[dns.message.Message], list[bytes]]


def answer(query: dns.message.Message, *values: str, rcode: int = dns.rcode.NOERROR) -> bytes:
    """The reply to `query` with these addresses (of the type it asked)."""
    response = dns.message.make_response(query)
    response.set_rcode(dns.rcode.Rcode.make(rcode))
    question = query.question[0]
    for value in values:
        response.answer.append(dns.rrset.from_text(question.name, 60, "IN", question.rdtype, value))
    return response.to_wire()


def address_of(query: dns.message.Message) -> str:
    return "2001:db8::1" if query.question[0].rdtype == TYPE_AAAA else "192.0.2.1"


@dataclass
class Scripted(asyncio.DatagramProtocol):
    """A UDP nameserver whose replies `script` writes (and that logs what it was asked)."""

    script: Script
    asked: list[tuple[str, int]] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        self.asked.append((query.question[0].name.to_text(True), query.question[0].rdtype))
        assert self.transport is not None
        for wire in self.script(query):
            self.transport.sendto(wire, addr)

    @property
    def nameserver(self) -> Nameserver:
        assert self.transport is not None
        address, port = self.transport.get_extra_info("sockname")[:2]
        return Nameserver(address, port)


@contextlib.asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[Scripted]:
    loop = asyncio.get_running_loop()
    transport, server = await loop.create_datagram_endpoint(
        lambda: Scripted(script), local_addr=("127.0.0.1", 0)
    )
    try:
        yield server
    finally:
        transport.close()


async def lookup(
    servers: list[Nameserver], host: str = "svc.example", timeout: float = 2.0
) -> list[Outcome]:
    stub = StubResolver(servers)
    try:
        return await stub.lookup(host, (TYPE_A, TYPE_AAAA), timeout)
    finally:
        await stub.aclose()


def test_a_and_aaaa_together() -> None:
    async def main() -> None:
        async with scripted(lambda q: [answer(q, address_of(q))]) as server:
            a, aaaa = await lookup([server.nameserver])
            assert (a.verdict, a.addresses, a.server) == (
                Verdict.ANSWER,
                ["192.0.2.1"],
                str(server.nameserver),
            )
            assert (aaaa.verdict, aaaa.addresses) == (Verdict.ANSWER, ["2001:db8::1"])
            assert sorted(server.asked) == [("svc.example", TYPE_A), ("svc.example", TYPE_AAAA)]

    run(main())


def test_replies_to_other_queries_are_ignored() -> None:
    def script(query: dns.message.Message) -> list[bytes]:
        wrong_id = dns.message.make_response(query)
        wrong_id.id = (query.id + 1) % 65536
        other = dns.message.make_query("other.example", query.question[0].rdtype, id=query.id)
        wrong_question = dns.message.make_response(other)
        wrong_question.answer.append(
            dns.rrset.from_text("other.example.", 60, "IN", query.question[0].rdtype, "::9")
            if query.question[0].rdtype == TYPE_AAAA
            else dns.rrset.from_text("other.example.", 60, "IN", "A", "198.51.100.9")
        )
        return [wrong_id.to_wire(), wrong_question.to_wire(), answer(query, address_of(query))]

    async def main() -> None:
        async with scripted(script) as server:
            a, aaaa = await lookup([server.nameserver])
            assert a.addresses == ["192.0.2.1"]
            assert aaaa.addresses == ["2001:db8::1"]

    run(main())


def test_a_reply_from_another_address_is_ignored() -> None:
    """Only the nameserver's own address and port may answer (a spoofed reply with the
    right id from elsewhere does not count)."""
    spoofer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    spoofer.bind(("127.0.0.1", 0))
    seen: list[tuple[str, int]] = []

    def script(query: dns.message.Message) -> list[bytes]:
        assert seen
        spoofer.sendto(answer(query, "203.0.113.66"), seen[-1])
        return []

    async def main() -> None:
        async with scripted(script) as server:
            real_received = server.datagram_received

            def remember(data: bytes, addr: tuple[str, int]) -> None:
                seen.append(addr)
                real_received(data, addr)

            server.datagram_received = remember  # type: ignore[method-assign]
            a, aaaa = await lookup([server.nameserver], timeout=0.3)
            assert a.verdict is aaaa.verdict is Verdict.TIMEOUT
            assert a.addresses == []

    try:
        run(main())
    finally:
        spoofer.close()


def test_a_failing_server_hands_over_to_the_next() -> None:
    async def main() -> None:
        refusing = scripted(lambda q: [answer(q, rcode=dns.rcode.REFUSED)])
        failing = scripted(lambda q: [answer(q, rcode=dns.rcode.SERVFAIL)])
        good = scripted(lambda q: [answer(q, address_of(q))])
        async with refusing as first, failing as second, good as third:
            servers = [first.nameserver, second.nameserver, third.nameserver]
            a, aaaa = await lookup(servers)
            assert (a.verdict, a.server) == (Verdict.ANSWER, str(third.nameserver))
            assert aaaa.addresses == ["2001:db8::1"]
            assert len(first.asked) == len(second.asked) == len(third.asked) == 2

    run(main())


# A reply header announcing one question and one answer, then one byte of a name.
_CUT_SHORT = b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x07"


def test_every_server_failing_is_servfail() -> None:
    async def main() -> None:
        async with (
            scripted(lambda q: [answer(q, rcode=dns.rcode.SERVFAIL)]) as first,
            scripted(lambda q: [q.to_wire()[:2] + _CUT_SHORT]) as garbage,
        ):
            a, _ = await lookup([first.nameserver, garbage.nameserver])
            assert a.verdict is Verdict.FAILED
            assert f"{first.nameserver} answered SERVFAIL" in a.detail
            assert str(garbage.nameserver) in a.detail

    run(main())


def test_nxdomain_is_final() -> None:
    async def main() -> None:
        async with (
            scripted(lambda q: [answer(q, rcode=dns.rcode.NXDOMAIN)]) as first,
            scripted(lambda q: [answer(q, address_of(q))]) as second,
        ):
            a, aaaa = await lookup([first.nameserver, second.nameserver])
            assert a.verdict is aaaa.verdict is Verdict.NXDOMAIN
            assert a.server == str(first.nameserver)
            assert second.asked == []

    run(main())


def test_truncated_reply_is_asked_again_over_tcp() -> None:
    many = [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(60)]  # 60 A records: > 512 bytes

    def truncated(query: dns.message.Message) -> list[bytes]:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.TC
        return [response.to_wire()]

    async def main() -> None:
        async with scripted(truncated) as server:
            port = server.nameserver.port
            asked_tcp: list[int] = []

            async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                size = int.from_bytes(await reader.readexactly(2), "big")
                query = dns.message.from_wire(await reader.readexactly(size))
                asked_tcp.append(query.question[0].rdtype)
                values = many if query.question[0].rdtype == TYPE_A else ()
                wire = answer(query, *values)
                writer.write(len(wire).to_bytes(2, "big") + wire)
                await writer.drain()
                writer.close()

            tcp_server = await asyncio.start_server(tcp, "127.0.0.1", port)
            async with tcp_server:
                a, aaaa = await lookup([server.nameserver])
            assert (a.verdict, sorted(a.addresses)) == (Verdict.ANSWER, sorted(many))
            assert aaaa.verdict is Verdict.NO_ANSWER
            assert sorted(asked_tcp) == [TYPE_A, TYPE_AAAA]

    run(main())


def test_silence_is_a_timeout_at_the_deadline() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with scripted(lambda q: []) as server:
            started = loop.time()
            a, aaaa = await lookup([server.nameserver], timeout=0.3)
            elapsed = loop.time() - started
            assert a.verdict is aaaa.verdict is Verdict.TIMEOUT
            assert 0.28 <= elapsed < 1.0

    run(main())


def test_many_names_in_flight_on_one_socket(dnsmasq: Callable[..., Dnsmasq]) -> None:
    names = [f"n{i}.bulk.test" for i in range(300)]
    zone = dnsmasq(
        "--local=/bulk.test/",
        *(f"--host-record={n},10.9.{i // 250}.{i % 250 + 1}" for i, n in enumerate(names)),
    )
    address, port = zone.nameserver.split(":")

    async def main() -> list[list[str]]:
        stub = StubResolver([Nameserver(address, int(port))])
        try:
            found = await asyncio.gather(*(stub.lookup(n, (TYPE_A,), 3.0) for n in names))
        finally:
            await stub.aclose()
        return [outcome.addresses for (outcome,) in found]

    expected = [[f"10.9.{i // 250}.{i % 250 + 1}"] for i in range(len(names))]
    assert run(main()) == expected


def test_probe_names_the_server_that_answered() -> None:
    async def main() -> None:
        async with (
            scripted(lambda q: [answer(q, rcode=dns.rcode.REFUSED)]) as first,
            scripted(lambda q: [answer(q, address_of(q))]) as second,
        ):
            options = ProbeOptions(nameservers=[str(first.nameserver), str(second.nameserver)])
            obs = await probe_once(probe_dns, check(CheckKind.DNS, "svc.example"), options)
            assert obs.status is ProbeStatus.OK
            assert obs.evidence["server"] == str(second.nameserver)
            assert obs.evidence["resolver"] == "given"
            assert obs.evidence["addresses"] == ["192.0.2.1", "2001:db8::1"]

    run(main())
