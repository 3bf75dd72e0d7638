"""The stub client's DNS codec against dnspython, the reference: the same wire read by
both must give the same answer, and garbage only ever `MalformedReply`."""

from __future__ import annotations

import contextlib
import itertools

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preflight._dnswire import (
    TYPE_A,
    TYPE_AAAA,
    BadName,
    ChainTooLong,
    MalformedReply,
    encode_name,
    encode_query,
    follow_chain,
    name_text,
    parse_reply,
    read_name,
)


def reply(
    qname: str,
    rdtype: str,
    records: list[tuple[str, str, str]],
    rcode: dns.rcode.Rcode = dns.rcode.NOERROR,
) -> dns.message.Message:
    """A dnspython reply to `qname`/`rdtype` with (owner, type, value) answers."""
    message = dns.message.make_response(dns.message.make_query(qname, rdtype))
    message.set_rcode(rcode)
    for owner, kind, value in records:
        message.find_rrset(
            message.answer,
            dns.name.from_text(owner),
            dns.rdataclass.IN,
            dns.rdatatype.from_text(kind),
            create=True,
        ).add(dns.rrset.from_text(owner, 60, "IN", kind, value)[0])
    return message


def dnspython_answer(message: dns.message.Message) -> tuple[list[str], list[str]]:
    """Sorted addresses and CNAME targets, as dnspython's `resolve_chaining` finds them."""
    parsed = dns.message.from_wire(message.to_wire())
    assert isinstance(parsed, dns.message.QueryMessage)
    chaining = parsed.resolve_chaining()
    addresses = sorted(r.to_text() for r in chaining.answer) if chaining.answer else []
    targets = [c[0].target.to_text(omit_final_dot=True) for c in chaining.cnames]
    return addresses, targets


def ours(message: dns.message.Message, qname: str, rdtype: int) -> tuple[list[str], list[str]]:
    parsed = parse_reply(message.to_wire())
    name = read_name(encode_name(qname), 0)[0]
    assert parsed.answers_query(name, rdtype)
    addresses, targets = follow_chain(parsed, name, rdtype)
    # Addresses come in wire order; dnspython's rdatasets iterate in their own.
    return sorted(addresses), [name_text(t) for t in targets]


def test_query_is_what_dnspython_sends() -> None:
    ours_wire = encode_query(0x1234, encode_name("mcr.microsoft.com"), TYPE_AAAA)
    theirs = dns.message.make_query("mcr.microsoft.com", "AAAA", id=0x1234)
    assert ours_wire == theirs.to_wire()


@pytest.mark.parametrize(
    "host",
    [
        "mcr.microsoft.com",
        "MCR.Microsoft.COM.",
        "a-b_c.example",
        "bücher.example",
        "x" * 63 + ".io",
    ],
)
def test_names_encode_as_dnspython_does(host: str) -> None:
    assert encode_name(host) == dns.name.from_text(host).to_wire()


@pytest.mark.parametrize("host", ["a..b", "x" * 64 + ".io", ".".join(["abcdefgh"] * 40)])
def test_names_without_a_wire_form(host: str) -> None:
    with pytest.raises(BadName):
        encode_name(host)


def test_plain_answer() -> None:
    message = reply("dual.example.com", "A", [("dual.example.com", "A", "203.0.113.7")])
    assert ours(message, "dual.example.com", TYPE_A) == dnspython_answer(message)
    assert ours(message, "dual.example.com", TYPE_A) == (["203.0.113.7"], [])


def test_chain_through_compressed_names_and_case() -> None:
    message = reply(
        "labacr01.azurecr.io",
        "A",
        [
            ("labacr01.azurecr.io", "CNAME", "LabAcr01.PrivateLink.azurecr.io."),
            ("labacr01.privatelink.azurecr.io", "CNAME", "edge.example.net."),
            ("edge.example.net", "A", "10.1.2.3"),
            ("edge.example.net", "A", "10.1.2.4"),
            ("unrelated.example.net", "A", "192.0.2.1"),
        ],
    )
    assert ours(message, "labacr01.azurecr.io", TYPE_A) == dnspython_answer(message)
    assert ours(message, "labacr01.azurecr.io", TYPE_A) == (
        ["10.1.2.3", "10.1.2.4"],
        ["LabAcr01.PrivateLink.azurecr.io", "edge.example.net"],
    )


def test_aaaa_text_as_dnspython_writes_it() -> None:
    values = ["2001:db8::7", "::ffff:192.0.2.1", "fe80::1:0:0:1", "2001:db8:0:0:1::1"]
    message = reply("v6.example", "AAAA", [("v6.example", "AAAA", v) for v in values])
    assert ours(message, "v6.example", TYPE_AAAA) == dnspython_answer(message)


def test_no_data_keeps_the_chain() -> None:
    message = reply("alias.example", "AAAA", [("alias.example", "CNAME", "v4only.example.")])
    assert ours(message, "alias.example", TYPE_AAAA) == ([], ["v4only.example"])
    assert dnspython_answer(message) == ([], ["v4only.example"])


def test_header_fields() -> None:
    message = reply("gone.example", "A", [], dns.rcode.NXDOMAIN)
    message.id = 4242
    parsed = parse_reply(message.to_wire())
    assert (parsed.query_id, parsed.rcode, parsed.truncated) == (4242, 3, False)
    message.flags |= dns.flags.TC
    assert parse_reply(message.to_wire()).truncated


def test_another_question_does_not_match() -> None:
    parsed = parse_reply(reply("a.example", "A", []).to_wire())
    assert not parsed.answers_query(read_name(encode_name("b.example"), 0)[0], TYPE_A)
    assert not parsed.answers_query(read_name(encode_name("a.example"), 0)[0], TYPE_AAAA)
    assert parsed.answers_query(read_name(encode_name("A.EXAMPLE"), 0)[0], TYPE_A)


def test_a_query_is_no_reply() -> None:
    with pytest.raises(MalformedReply):
        parse_reply(dns.message.make_query("a.example", "A").to_wire())


def test_chain_of_sixteen_is_too_long() -> None:
    hops = [(f"n{i}.example", "CNAME", f"n{i + 1}.example.") for i in range(16)]
    message = reply("n0.example", "A", [*hops, ("n16.example", "A", "192.0.2.1")])
    with pytest.raises(ChainTooLong):
        ours(message, "n0.example", TYPE_A)
    with pytest.raises(dns.message.ChainTooLong):
        dnspython_answer(message)


def test_pointer_loops_are_malformed() -> None:
    wire = bytearray(reply("a.example", "A", [("a.example", "A", "192.0.2.1")]).to_wire())
    wire[12:14] = b"\xc0\x0c"  # the question name points at itself
    with pytest.raises(MalformedReply):
        parse_reply(bytes(wire))


_WIRE = reply(
    "labacr01.azurecr.io",
    "A",
    [
        ("labacr01.azurecr.io", "CNAME", "labacr01.privatelink.azurecr.io."),
        ("labacr01.privatelink.azurecr.io", "A", "10.1.2.3"),
    ],
).to_wire()


def test_every_cut_of_a_reply_is_malformed_or_shorter() -> None:
    for size in range(len(_WIRE)):
        try:
            parsed = parse_reply(_WIRE[:size])
        except MalformedReply:
            continue
        assert len(parsed.answers) < 2, size


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(_WIRE) - 1), st.integers(0, 255))
def test_corrupted_bytes_raise_only_malformed(position: int, value: int) -> None:
    wire = bytearray(_WIRE)
    wire[position] = value
    with contextlib.suppress(MalformedReply):
        parse_reply(bytes(wire))


_LABEL = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
_NAME = st.lists(_LABEL, min_size=1, max_size=4).map(lambda labels: ".".join(labels) + ".test")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(_NAME, min_size=1, max_size=4, unique=True),
    st.lists(st.ip_addresses(v=4).map(str), min_size=0, max_size=4, unique=True),
)
def test_chains_match_dnspython(names: list[str], addresses: list[str]) -> None:
    records = [(a, "CNAME", b + ".") for a, b in itertools.pairwise(names)]
    records += [(names[-1], "A", address) for address in addresses]
    message = reply(names[0], "A", records)
    assert ours(message, names[0], TYPE_A) == dnspython_answer(message)


def test_addresses_keep_the_order_of_the_wire() -> None:
    values = [f"192.0.2.{i}" for i in (9, 3, 7, 1, 5)]
    wire = reply("rr.example", "A", [("rr.example", "A", v) for v in values]).to_wire()
    in_wire = dns.message.from_wire(wire, one_rr_per_rrset=True)
    expected = [rrset[0].to_text() for rrset in in_wire.answer]
    name = read_name(encode_name("rr.example"), 0)[0]
    assert follow_chain(parse_reply(wire), name, TYPE_A)[0] == expected
