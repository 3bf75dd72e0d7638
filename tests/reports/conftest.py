"""Small plans and hand-built evaluations for the report tests.

The plans come from the real `build_plan`; the evaluations are built by hand in the shape
`rules.model` fixes, so every renderer is tested against known statuses, reasons and times.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rules.catalogue import requirements_for
from rules.config import parse_config
from rules.model import (
    Evaluation,
    Finding,
    Observation,
    Phase,
    PhaseVerdict,
    ProbeStatus,
    Protocol,
    Requirement,
    Status,
)
from rules.plan import Plan, build_plan

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

HOSTILE = (
    "<script>alert(\"x\")</script> | a 'quote' `tick` *star* [link](x) & more\nsecond line\x1b[31m"
)


def small_requirements(purpose: str = "the API", note: str = "a wildcard") -> list[Requirement]:
    return [
        Requirement(
            id="t/api",
            catalogue="t",
            host="api.example.test",
            port=443,
            protocol=Protocol.HTTPS,
            phases=(Phase.ROUTER_INSTALL, Phase.SERVING),
            purpose=purpose,
            source="doc A",
            breaks="install hangs",
        ),
        Requirement(
            id="t/data",
            catalogue="t",
            host="*.data.example.test",
            port=443,
            protocol=Protocol.HTTPS,
            phases=(Phase.ROUTER_INSTALL,),
            purpose="layers",
            source="doc B",
            note=note,
        ),
        Requirement(
            id="t/db",
            catalogue="t",
            host="db.example.test",
            port=5432,
            protocol=Protocol.TCP,
            phases=(Phase.SERVING,),
            purpose="feature store",
            source="config",
            breaks="scoring fails",
            severity="warn",
        ),
    ]


@pytest.fixture
def small_plan() -> Plan:
    """Two phases: an HTTPS host in router-install (also needed by serving), a TCP host in
    serving, and a wildcard no probe can test."""
    return build_plan(small_requirements(), [Phase.ROUTER_INSTALL, Phase.SERVING])


def observation(check_id: str, status: ProbeStatus, ms: float, **evidence: object) -> Observation:
    return Observation(
        check_id, status, ms, detail="" if status is ProbeStatus.OK else "nope", evidence=evidence
    )


def small_evaluation(plan: Plan, reason: str = "timeout: nope", timed: bool = True) -> Evaluation:
    """tcp:api fails (timeout), so tls/http:api are blocked and serving is blocked;
    dns:db warns; dns:api passes."""
    checks = plan.checks

    def at(ms: float) -> dict[str, object]:
        return {"started_ms": ms} if timed else {}

    findings = (
        Finding(
            checks["dns:api.example.test"],
            Status.PASS,
            "203.0.113.7 from 10.0.0.53",
            observation(
                "dns:api.example.test", ProbeStatus.OK, 12.5, addresses=["203.0.113.7"], **at(0.0)
            ),
        ),
        Finding(
            checks["tcp:api.example.test:443"],
            Status.FAIL,
            reason,
            observation("tcp:api.example.test:443", ProbeStatus.TIMEOUT, 3000.0, **at(12.5)),
            remediation="allow TCP 443 to api.example.test",
        ),
        Finding(
            checks["tls:api.example.test:443"],
            Status.BLOCKED,
            "not run: waits on tcp:api.example.test:443, which failed",
            blocked_by="tcp:api.example.test:443",
            remediation="fix tcp:api.example.test:443 first",
        ),
        Finding(
            checks["http:api.example.test:443"],
            Status.BLOCKED,
            "not run: waits on tcp:api.example.test:443, which failed",
            blocked_by="tcp:api.example.test:443",
            remediation="fix tcp:api.example.test:443 first",
        ),
        Finding(
            checks["dns:db.example.test"],
            Status.WARN,
            "nxdomain: nope",
            observation("dns:db.example.test", ProbeStatus.NXDOMAIN, 8.0, **at(3012.5)),
            remediation="create the record",
        ),
        Finding(
            checks["tcp:db.example.test:5432"], Status.SKIPPED, "dns:db.example.test was skipped"
        ),
    )
    return Evaluation(
        findings=findings,
        phases=(
            PhaseVerdict(Phase.ROUTER_INSTALL, Status.FAIL, ("tcp:api.example.test:443",)),
            PhaseVerdict(Phase.SERVING, Status.BLOCKED, ("tcp:api.example.test:443",)),
        ),
        verdict=Status.FAIL,
        first_failing_phase=Phase.ROUTER_INSTALL,
        duration_s=3.0205,
    )


@pytest.fixture
def small_result(small_plan: Plan) -> Evaluation:
    return small_evaluation(small_plan)


def hostile_plan() -> Plan:
    """Purposes, notes and even host names full of markup, quotes and control characters."""
    reqs = small_requirements(purpose=HOSTILE, note=HOSTILE)
    reqs.append(
        Requirement(
            id="t/evil",
            catalogue="t",
            host='evil"&x.ex{a}mple|te;st`end#1\\',
            port=443,
            protocol=Protocol.TCP,
            phases=(Phase.SERVING,),
            purpose=HOSTILE,
            source=HOSTILE,
            breaks=HOSTILE,
        )
    )
    # A pattern host becomes a check that cannot be probed: ids with `<`, `>` and quotes.
    reqs.append(
        Requirement(
            id="t/pattern",
            catalogue="t",
            host="<acr>'\"x.azurecr.io",
            port=443,
            protocol=Protocol.HTTPS,
            phases=(Phase.SERVING,),
            purpose=HOSTILE,
            source=HOSTILE,
            missing_field="registry",
        )
    )
    return build_plan(reqs, [Phase.ROUTER_INSTALL, Phase.SERVING])


def hostile_evaluation(plan: Plan) -> Evaluation:
    base = small_evaluation(plan, reason=HOSTILE)
    evil = [c for c in plan.checks.values() if c.target.startswith(("evil", "<acr>"))]
    extra = tuple(
        Finding(
            check,
            Status.FAIL,
            HOSTILE,
            observation(check.id, ProbeStatus.REFUSED, 1.0, note=HOSTILE, started_ms=5.0),
            remediation=HOSTILE,
        )
        for check in evil
    )
    return Evaluation(
        base.findings + extra, base.phases, base.verdict, base.first_failing_phase, base.duration_s
    )


def example_plan(name: str = "key-auth-auto-domain.yaml") -> Plan:
    config = parse_config(yaml.safe_load((EXAMPLES / name).read_text()))
    return build_plan(requirements_for(config))
