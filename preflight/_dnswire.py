"""DNS messages for the probe's stub client: an A or AAAA query, and the few parts of a
reply the DNS probe reads (id, flags, rcode, the question, A, AAAA and CNAME answers).

dnspython parses a reply into full objects (names, rdata, rrsets, enums) for about
100-180 µs a message, which for a plan of a thousand names was a quarter of a run's CPU;
this reads what the probe needs in a few µs. dnspython stays the reference: the tests
parse the same wire with both and compare, and names that are not plain ASCII host
names go through dnspython's name codec.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

import dns.exception
import dns.name

TYPE_A = 1
TYPE_CNAME = 5
TYPE_AAAA = 28
CLASS_IN = 1
RCODE_NOERROR = 0
RCODE_NXDOMAIN = 3
RCODE_YXDOMAIN = 6
MAX_CHAIN = 16  # as dnspython: this many CNAMEs is an error

_HEADER = struct.Struct("!HHHHHH")
_QUESTION = struct.Struct("!HH")
_RECORD = struct.Struct("!HHIH")
_QR = 0x8000
_OPCODE = 0x7800
_TC = 0x0200
_RD = 0x0100
_MAX_NAME = 255
_MAX_JUMPS = 64
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")

Labels = tuple[bytes, ...]


class MalformedReply(ValueError):
    """The bytes are not a DNS message this client can read."""


class ChainTooLong(ValueError):
    """`MAX_CHAIN` CNAMEs (or a loop) before the answer."""


class BadName(ValueError):
    """The host name has no DNS wire form (an empty or over-long label, ...)."""


def encode_name(host: str) -> bytes:
    """The wire form of `host` (absolute). Plain ASCII names are encoded here; anything
    else (IDNA, escapes) by dnspython, which also says what is wrong with a bad one."""
    text = host.rstrip(".") if host != "." else ""
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raw = b""
    labels = raw.split(b".")
    if raw and b"\\" not in raw and all(0 < len(label) <= 63 for label in labels):
        wire = b"".join(bytes((len(label),)) + label for label in labels) + b"\x00"
        if len(wire) <= _MAX_NAME:
            return wire
    try:
        return dns.name.from_text(host).to_wire() or b""
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise BadName(f"{host!r} is no DNS name: {exc}") from exc


def encode_query(query_id: int, name_wire: bytes, rdtype: int) -> bytes:
    """A recursive query (RD set) for one name and type, class IN, no EDNS."""
    return _HEADER.pack(query_id, _RD, 1, 0, 0, 0) + name_wire + _QUESTION.pack(rdtype, CLASS_IN)


def name_text(labels: Labels) -> str:
    """A name as dnspython writes it without the final dot (escaping what needs it)."""
    if all(_PLAIN.issuperset(label) for label in labels):
        return b".".join(labels).decode("ascii")
    return dns.name.Name((*labels, b"")).to_text(omit_final_dot=True)


def read_name(wire: bytes, offset: int) -> tuple[Labels, int]:
    """The name at `offset` (following compression pointers, which must point back) and
    the offset after it."""
    labels: list[bytes] = []
    after = -1
    jumps = 0
    size = 1
    try:
        while True:
            length = wire[offset]
            if length >= 0xC0:
                pointer = (length & 0x3F) << 8 | wire[offset + 1]
                if after < 0:
                    after = offset + 2
                if pointer >= offset or jumps >= _MAX_JUMPS:
                    raise MalformedReply("a compression pointer that does not point back")
                jumps += 1
                offset = pointer
                continue
            if length > 63:
                raise MalformedReply("an unknown label type")
            offset += 1
            if length == 0:
                break
            label = wire[offset : offset + length]
            if len(label) != length:
                raise MalformedReply("a name runs past the end of the message")
            size += length + 1
            if size > _MAX_NAME:
                raise MalformedReply("a name longer than 255 octets")
            labels.append(label)
            offset += length
    except IndexError:
        raise MalformedReply("a name runs past the end of the message") from None
    return tuple(labels), after if after >= 0 else offset


@dataclass(frozen=True, slots=True)
class Record:
    owner: Labels
    rdtype: int
    value: str | Labels  # an address for A/AAAA, the target's labels for CNAME


@dataclass(frozen=True, slots=True)
class Reply:
    query_id: int
    rcode: int
    truncated: bool
    question: tuple[Labels, int, int] | None  # name, type, class (None unless exactly one)
    answers: tuple[Record, ...]

    def answers_query(self, name: Labels, rdtype: int) -> bool:
        """Whether this reply is to the question (name compared without case)."""
        if self.question is None:
            return False
        q_name, q_type, q_class = self.question
        return q_type == rdtype and q_class == CLASS_IN and _same(q_name, name)


def _same(a: Labels, b: Labels) -> bool:
    return len(a) == len(b) and all(x.lower() == y.lower() for x, y in zip(a, b, strict=True))


def parse_reply(wire: bytes) -> Reply:
    """The header, the question and the IN-class A, AAAA and CNAME answers of a reply.
    A truncated reply (TC) is read only up to its question."""
    try:
        query_id, flags, qdcount, ancount, _, _ = _HEADER.unpack_from(wire)
    except struct.error:
        raise MalformedReply("shorter than a DNS header") from None
    if not flags & _QR or flags & _OPCODE:
        raise MalformedReply("not a reply to a standard query")
    rcode = flags & 0x000F
    truncated = bool(flags & _TC)
    offset = 12
    question = None
    try:
        for _ in range(qdcount):
            name, offset = read_name(wire, offset)
            rdtype, rdclass = _QUESTION.unpack_from(wire, offset)
            offset += 4
            question = (name, rdtype, rdclass) if qdcount == 1 else None
        answers: list[Record] = []
        for _ in range(0 if truncated else ancount):
            owner, offset = read_name(wire, offset)
            rdtype, rdclass, _ttl, rdlength = _RECORD.unpack_from(wire, offset)
            offset += 10
            end = offset + rdlength
            if end > len(wire):
                raise MalformedReply("a record runs past the end of the message")
            if rdclass == CLASS_IN:
                record = _record(wire, owner, rdtype, offset, end)
                if record is not None:
                    answers.append(record)
            offset = end
    except struct.error:
        raise MalformedReply("a section runs past the end of the message") from None
    return Reply(query_id, rcode, truncated, question, tuple(answers))


def _record(wire: bytes, owner: Labels, rdtype: int, start: int, end: int) -> Record | None:
    if rdtype == TYPE_A:
        if end - start != 4:
            raise MalformedReply("an A record that is not 4 octets")
        return Record(owner, rdtype, socket.inet_ntop(socket.AF_INET, wire[start:end]))
    if rdtype == TYPE_AAAA:
        if end - start != 16:
            raise MalformedReply("an AAAA record that is not 16 octets")
        return Record(owner, rdtype, socket.inet_ntop(socket.AF_INET6, wire[start:end]))
    if rdtype == TYPE_CNAME:
        target, after = read_name(wire, start)
        if after != end:
            raise MalformedReply("a CNAME whose target does not fill its record")
        return Record(owner, rdtype, target)
    return None


def follow_chain(reply: Reply, name: Labels, rdtype: int) -> tuple[list[str], list[Labels]]:
    """The answer's addresses for `name` and `rdtype`, following CNAMEs as dnspython's
    `resolve_chaining` does, and the CNAME targets on the way (in order)."""
    current = name
    targets: list[Labels] = []
    while True:
        found = [r.value for r in reply.answers if r.rdtype == rdtype and _same(r.owner, current)]
        if found:
            return list(dict.fromkeys(str(v) for v in found)), targets
        alias = next(
            (r.value for r in reply.answers if r.rdtype == TYPE_CNAME and _same(r.owner, current)),
            None,
        )
        if alias is None or isinstance(alias, str):
            return [], targets
        if len(targets) + 1 >= MAX_CHAIN:
            raise ChainTooLong(f"{MAX_CHAIN} or more CNAMEs before an answer")
        targets.append(alias)
        current = alias
