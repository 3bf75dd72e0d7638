"""The plan as JSON: a stable, documented document for CI and other tools.

Schema `aksflight.plan/1` is described in docs/output-formats.md. Keys never change meaning
within a schema version; new keys may appear. Everything is in a deterministic order (plan
order for checks, catalogue order for requirements), so two runs on the same config give
byte-identical output. No rich here: this path must stay fast for very large plans.
"""

from __future__ import annotations

from typing import Any

from reports._common import DEFAULT_OPTIONS, Options, allowlist_only, dumps_lines, gc_paused
from rules.model import PHASE_SYMPTOMS, PHASE_TITLES, Check, CheckKind, Phase, Requirement
from rules.plan import Plan, gate_id

PLAN_SCHEMA = "aksflight.plan/1"


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan as plain data (what `plan_json` serialises)."""
    predecessors = {node: sorted(before) for node, before in plan.graph.pred.items()}
    phases = []
    previous = None
    for phase in plan.phases:
        phases.append(
            {
                "id": phase.value,
                "gate": gate_id(phase),
                "title": PHASE_TITLES[phase],
                "symptom": PHASE_SYMPTOMS[phase],
                "depends_on": previous,
                "checks": plan.needed_by(phase),
            }
        )
        previous = phase.value
    values = _EnumValues()
    checks = [
        _check(plan.checks[node], predecessors[node], values)
        for node in plan.order()
        if node in plan.checks
    ]
    covered: dict[str, list[str]] = {}
    for check in checks:
        for rid in check["requirements"]:
            covered.setdefault(rid, []).append(check["id"])
    unprobed = {req.id for req in allowlist_only(plan)}
    return {
        "schema": PLAN_SCHEMA,
        "phases": phases,
        "checks": checks,
        "requirements": [
            _requirement(req, covered.get(req.id, []), req.id not in unprobed)
            for req in plan.requirements
        ],
        "timeline": plan.timeline(),
    }


def plan_json(plan: Plan, options: Options = DEFAULT_OPTIONS) -> str:
    """The plan as JSON text (two-space indent at the top, one check per line)."""
    del options  # JSON ignores width and colour
    with gc_paused():
        return dumps_lines(plan_document(plan))


class _EnumValues:
    """Memoised enum values: `Enum.value` is a slow descriptor, and 30,000 checks add up."""

    def __init__(self) -> None:
        self._phases: dict[tuple[Phase, ...], list[str]] = {}
        self._scalars: dict[Phase | CheckKind, str] = {}

    def phases(self, phases: tuple[Phase, ...]) -> list[str]:
        found = self._phases.get(phases)
        if found is None:
            found = self._phases[phases] = [p.value for p in phases]
        return list(found)

    def scalar(self, member: Phase | CheckKind) -> str:
        found = self._scalars.get(member)
        if found is None:
            found = self._scalars[member] = member.value
        return found


def _check(check: Check, depends_on: list[str], values: _EnumValues) -> dict[str, Any]:
    return {
        "id": check.id,
        "phase": values.scalar(check.phase),
        "phases": values.phases(check.phases),
        "kind": values.scalar(check.kind),
        "target": check.target,
        "port": check.port,
        "depends_on": depends_on,
        "purpose": check.purpose,
        "source": check.source,
        "breaks": check.breaks,
        "severity": check.severity,
        "requirements": list(check.requirement_ids),
        "expect_private": check.expect_private,
        "private_link_zone": check.private_link_zone,
        "probe": check.unprobeable_reason is None,
        "skip_reason": check.unprobeable_reason,
    }


def _requirement(req: Requirement, checks: list[str], probed: bool) -> dict[str, Any]:
    return {
        "id": req.id,
        "catalogue": req.catalogue,
        "host": req.host,
        "port": req.port,
        "protocol": req.protocol.value,
        "phases": [p.value for p in req.phases],
        "purpose": req.purpose,
        "source": req.source,
        "breaks": req.breaks,
        "severity": req.severity,
        "probed": probed,
        "checks": checks,
        "note": req.note,
        "wildcard": req.is_wildcard,
        "service_tag": req.service_tag,
        "fqdn_tag": req.fqdn_tag,
        "private_endpoint": req.private_endpoint,
        "private_link_zone": req.private_link_zone,
    }
