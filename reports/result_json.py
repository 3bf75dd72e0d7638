"""A preflight result as JSON (schema `aksflight.check/1`, see docs/output-formats.md).

One entry per finding, in plan order, with the same check ids as the plan's JSON, so a CI
job can join the two or track a check across runs.
"""

from __future__ import annotations

from typing import Any

from reports._common import (
    DEFAULT_OPTIONS,
    Options,
    counts,
    dumps_lines,
    duration_ms,
    evidence,
    gc_paused,
    ordered_findings,
    probe_status,
    started_ms,
)
from rules.model import PHASE_TITLES, Evaluation, Finding
from rules.plan import Plan

CHECK_SCHEMA = "aksflight.check/1"


def result_document(evaluation: Evaluation, plan: Plan) -> dict[str, Any]:
    """The evaluation as plain data (what `result_json` serialises)."""
    findings = ordered_findings(evaluation.findings, plan)
    first = evaluation.first_failing_phase
    return {
        "schema": CHECK_SCHEMA,
        "verdict": evaluation.verdict.value,
        "duration_s": round(evaluation.duration_s, 3),
        "first_failing_phase": None if first is None else first.value,
        "counts": counts(findings),
        "phases": [
            {
                "id": verdict.phase.value,
                "title": PHASE_TITLES[verdict.phase],
                "verdict": verdict.status.value,
                "failed": list(verdict.failed),
            }
            for verdict in evaluation.phases
        ],
        "checks": [_finding(finding, plan) for finding in findings],
    }


def result_json(evaluation: Evaluation, plan: Plan, options: Options = DEFAULT_OPTIONS) -> str:
    """The evaluation as JSON text (top-level keys and list items one per line)."""
    del options
    with gc_paused():
        return dumps_lines(result_document(evaluation, plan))


def _finding(finding: Finding, plan: Plan) -> dict[str, Any]:
    check = finding.check
    depends_on = plan.prerequisites(check.id) if check.id in plan else []
    took = duration_ms(finding)
    return {
        "id": check.id,
        "phase": check.phase.value,
        "kind": check.kind.value,
        "target": check.target,
        "port": check.port,
        "status": finding.status.value,
        "reason": finding.reason,
        "probe_status": probe_status(finding),
        "started_ms": started_ms(finding),
        "duration_ms": None if took is None else round(took, 3),
        "depends_on": depends_on,
        "blocked_by": finding.blocked_by,
        "evidence": dict(evidence(finding)),
        "remediation": finding.remediation,
    }
