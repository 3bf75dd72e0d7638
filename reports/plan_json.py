"""The plan as JSON: a stable, documented document for CI and other tools.

Schema `aksflight.plan/1` is described in docs/output-formats.md. Keys never change meaning
within a schema version; new keys may appear. Everything is in a deterministic order (plan
order for checks, catalogue order for requirements), so two runs on the same config give
byte-identical output, one check per line so two plans diff check by check.

This path must stay fast for very large plans (30,000 checks well under half a second), so
no rich, and no `json.dumps(indent=...)` (the pure-Python encoder): building a dict per
check and encoding it costs about twice as much as writing each check's line from pieces
that the json module's own C string encoder made. `plan_document` is that text parsed, so
the data and the text cannot disagree; tests compare both with the documented shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from json.encoder import encode_basestring
from typing import Any

from reports._common import DEFAULT_OPTIONS, Options, allowlist_only, gc_paused
from rules.model import PHASE_SYMPTOMS, PHASE_TITLES, Check, CheckKind, Phase, Protocol, Requirement
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
    return "[" + ", ".join([encode_basestring(value) for value in values]) + "]"


class _Encoder:
    """JSON text of what many lines repeat, each encoded once: node ids (a check's id
    comes back in its dependants' `depends_on`, its requirement's `checks` and the
    timeline), the small tuples checks share (phases, requirement ids), and the fields a
    check takes from its requirements, which the 2–4 checks of one requirement share."""

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}
        self._tuples: dict[tuple[str, ...], str] = {}
        self._shared: dict[tuple[object, ...], str] = {}

    def id(self, node: str) -> str:
        found = self._ids.get(node)
        if found is None:
            found = self._ids[node] = encode_basestring(node)
        return found

    def ids(self, nodes: Iterable[str]) -> str:
        one = self.id
        return "[" + ", ".join([one(node) for node in nodes]) + "]"

    def values(self, values: tuple[str, ...]) -> str:
        found = self._tuples.get(values)
        if found is None:
            found = self._tuples[values] = _texts(values)
        return found

    def shared(self, c: Check) -> str:
        key = (c.requirement_ids, c.purpose, c.source, c.breaks, c.severity)
        found = self._shared.get(key)
        if found is None:
            enc = encode_basestring
            found = self._shared[key] = (
                f'"purpose": {enc(c.purpose)}, "source": {enc(c.source)}, '
                f'"breaks": {enc(c.breaks)}, "severity": {enc(c.severity)}, '
                f'"requirements": {self.values(c.requirement_ids)}'
            )
        return found


def _flag(value: bool | None) -> str:
    return "null" if value is None else ("true" if value else "false")


def _number(value: int | None) -> str:
    return "null" if value is None else str(int(value))


def _check_line(check: Check, depends_on: list[str], enc: _Encoder) -> str:
    c = check
    return (
        f'{_INDENT}{{"id": {enc.id(c.id)}, "phase": {_ENUM[c.phase]}, '
        f'"phases": {enc.values(c.phases)}, "kind": {_ENUM[c.kind]}, '
        f'"target": {encode_basestring(c.target)}, "port": {_number(c.port)}, '
        f'"depends_on": {enc.ids(depends_on)}, {enc.shared(c)}, '
        f'"expect_private": {_flag(c.expect_private)}, '
        f'"private_link_zone": {_text(c.private_link_zone)}, '
        f'"probe": {_flag(c.unprobeable_reason is None)}, '
        f'"skip_reason": {_text(c.unprobeable_reason)}}}'
    )


def _requirement_line(req: Requirement, checks: list[str], probed: bool, memo: _Encoder) -> str:
    enc = encode_basestring
    return (
        f'{_INDENT}{{"id": {enc(req.id)}, "catalogue": {enc(req.catalogue)}, '
        f'"host": {enc(req.host)}, "port": {_number(req.port)}, '
        f'"protocol": {_ENUM[req.protocol]}, "phases": {memo.values(req.phases)}, '
        f'"purpose": {enc(req.purpose)}, "source": {enc(req.source)}, '
        f'"breaks": {enc(req.breaks)}, "severity": {enc(req.severity)}, '
        f'"probed": {_flag(probed)}, "checks": {memo.ids(checks)}, '
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
        memo = _Encoder()
        checks = plan.checks
        check_lines = []
        covered: dict[str, list[str]] = {}
        for node in plan.order():
            check = checks.get(node)
            if check is None:
                continue
            check_lines.append(_check_line(check, plan.prerequisites(node), memo))
            for rid in check.requirement_ids:
                covered.setdefault(rid, []).append(node)
        unprobed = {req.id for req in allowlist_only(plan)}
        requirement_lines = [
            _requirement_line(req, covered.get(req.id, []), req.id not in unprobed, memo)
            for req in plan.requirements
        ]
        timeline_lines = [_INDENT + memo.ids(step) for step in plan.timeline()]
        parts = [
            "{",
            f'  "schema": {_text(PLAN_SCHEMA)},',
            _section("phases", _phase_lines(plan)),
            _section("checks", check_lines),
            _section("requirements", requirement_lines),
            _section("timeline", timeline_lines, last=True),
            "}",
        ]
        return "\n".join(parts) + "\n"


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan as plain data: exactly what `plan_json` writes, parsed."""
    document: dict[str, Any] = json.loads(plan_json(plan))
    return document
