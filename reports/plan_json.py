"""The plan as JSON: a stable, documented document for CI and other tools.

Schema `aksflight.plan/1` is described in docs/output-formats.md. Keys never change meaning
within a schema version; new keys may appear. Everything is in a deterministic order (plan
order for checks, catalogue order for requirements), so two runs on the same config give
byte-identical output, one check per line so two plans diff check by check.

This path must stay fast for very large plans (30,000 checks in about a quarter of a second), so
no rich, and no `json.dumps(indent=...)` (the pure-Python encoder): building a dict per
check and encoding it costs about twice as much as writing each check's line from pieces
that the json module's own C string encoder made. `plan_document` is that text parsed, so
the data and the text cannot disagree; tests compare both with the documented shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from enum import StrEnum
from json.encoder import encode_basestring
from typing import Any

from reports._common import DEFAULT_OPTIONS, Options, allowlist_only, gc_paused
from rules.model import PHASE_SYMPTOMS, PHASE_TITLES, CheckKind, Phase, Protocol, Requirement
from rules.plan import Plan, gate_id

PLAN_SCHEMA = "aksflight.plan/1"
_INDENT = "    "
_ENUM: dict[StrEnum, str] = {
    member: encode_basestring(member.value)
    for enum in (Phase, CheckKind, Protocol)
    for member in enum
}


def _text(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def _texts(values: Iterable[str]) -> str:
    return "[" + ", ".join(map(encode_basestring, values)) + "]"


def _flag(value: bool | None) -> str:
    return "null" if value is None else ("true" if value else "false")


def _number(value: int | None) -> str:
    return "null" if value is None else str(int(value))


class _Memo(dict[Any, str]):
    """JSON text of what many lines repeat, made once per distinct value: the small tuples
    checks share (phases, requirement ids), the fields a check takes from its requirements
    (the 2–4 checks of one requirement share them) and its DNS-only tail (the same for
    every check that is not DNS)."""

    def __init__(self, make: Callable[[Any], str]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key: Any) -> str:
        text = self[key] = self.make(key)
        return text


def _from_requirements(key: tuple[tuple[str, ...], str, str, str, str]) -> str:
    requirement_ids, purpose, source, breaks, severity = key
    enc = encode_basestring
    return (
        f'"purpose": {enc(purpose)}, "source": {enc(source)}, "breaks": {enc(breaks)}, '
        f'"severity": {enc(severity)}, "requirements": {_texts(requirement_ids)}'
    )


def _tail(key: tuple[bool | None, str | None, str | None]) -> str:
    expect_private, zone, skip_reason = key
    return (
        f'"expect_private": {_flag(expect_private)}, "private_link_zone": {_text(zone)}, '
        f'"probe": {_flag(skip_reason is None)}, "skip_reason": {_text(skip_reason)}}}'
    )


def _check_lines(plan: Plan) -> list[str]:
    """One line per check, in plan order. The hot loop of the module: a comprehension
    over locals, with C functions (`map`, the json string encoder) doing the repeats."""
    enc = encode_basestring
    enum = _ENUM
    tuples = _Memo(_texts)
    shared = _Memo(_from_requirements)
    tails = _Memo(_tail)
    checks = plan.checks
    prerequisites = plan.prerequisites
    return [
        f'{_INDENT}{{"id": {enc(c.id)}, "phase": {enum[c.phase]}, '
        f'"phases": {tuples[c.phases]}, "kind": {enum[c.kind]}, '
        f'"target": {enc(c.target)}, "port": {"null" if c.port is None else int(c.port)}, '
        f'"depends_on": [{", ".join(map(enc, prerequisites(node)))}], '
        f"{shared[c.requirement_ids, c.purpose, c.source, c.breaks, c.severity]}, "
        f"{tails[c.expect_private, c.private_link_zone, c.unprobeable_reason]}"
        for node in plan.order()
        if (c := checks.get(node)) is not None
    ]


def _requirement_line(req: Requirement, checks: list[str], probed: bool) -> str:
    enc = encode_basestring
    return (
        f'{_INDENT}{{"id": {enc(req.id)}, "catalogue": {enc(req.catalogue)}, '
        f'"host": {enc(req.host)}, "port": {_number(req.port)}, '
        f'"protocol": {_ENUM[req.protocol]}, "phases": {_texts(req.phases)}, '
        f'"purpose": {enc(req.purpose)}, "source": {enc(req.source)}, '
        f'"breaks": {enc(req.breaks)}, "severity": {enc(req.severity)}, '
        f'"probed": {_flag(probed)}, "checks": {_texts(checks)}, '
        f'"note": {enc(req.note)}, "wildcard": {_flag(req.is_wildcard)}, '
        f'"service_tag": {_text(req.service_tag)}, "fqdn_tag": {_text(req.fqdn_tag)}, '
        f'"private_endpoint": {_flag(req.private_endpoint)}, '
        f'"private_link_zone": {_text(req.private_link_zone)}}}'
    )


def _phase_lines(plan: Plan) -> list[str]:
    lines = []
    previous = None
    for phase in plan.phases:
        lines.append(
            f'{_INDENT}{{"id": {_ENUM[phase]}, "gate": {_text(gate_id(phase))}, '
            f'"title": {_text(PHASE_TITLES[phase])}, '
            f'"symptom": {_text(PHASE_SYMPTOMS[phase])}, '
            f'"depends_on": {_text(previous)}, '
            f'"checks": {_texts(plan.needed_by(phase))}}}'
        )
        previous = phase.value
    return lines


def _section(name: str, lines: list[str], last: bool = False) -> str:
    comma = "" if last else ","
    if not lines:
        return f'  "{name}": []{comma}'
    body = ",\n".join(lines)
    return f'  "{name}": [\n{body}\n  ]{comma}'


def plan_json(plan: Plan, options: Options = DEFAULT_OPTIONS) -> str:
    """The plan as JSON text: top-level keys and each list item on a line of their own."""
    del options  # JSON ignores width and colour
    with gc_paused():
        covered: dict[str, list[str]] = {}
        for node in plan.order():
            check = plan.checks.get(node)
            if check is not None:
                for rid in check.requirement_ids:
                    covered.setdefault(rid, []).append(node)
        unprobed = {req.id for req in allowlist_only(plan)}
        requirement_lines = [
            _requirement_line(req, covered.get(req.id, []), req.id not in unprobed)
            for req in plan.requirements
        ]
        timeline_lines = [_INDENT + _texts(step) for step in plan.timeline()]
        parts = [
            "{",
            f'  "schema": {_text(PLAN_SCHEMA)},',
            _section("phases", _phase_lines(plan)),
            _section("checks", _check_lines(plan)),
            _section("requirements", requirement_lines),
            _section("timeline", timeline_lines, last=True),
            "}",
        ]
        return "\n".join(parts) + "\n"


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan as plain data: exactly what `plan_json` writes, parsed."""
    document: dict[str, Any] = json.loads(plan_json(plan))
    return document
