"""`aksflight check -o json`: exact keys and values for a small, hand-built evaluation."""

from __future__ import annotations

import json

from reports import CHECK_FORMATS, CHECK_SCHEMA, result_document
from rules.model import Evaluation
from rules.plan import Plan

API = "api.example.test"


def _entry(cid: str, kind: str, status: str, reason: str, **over: object) -> dict[str, object]:
    target = cid.split(":")[1]
    base: dict[str, object] = {
        "id": cid,
        "phase": "router-install" if target == API else "serving",
        "kind": kind,
        "target": target,
        "port": int(cid.split(":")[2]) if cid.count(":") == 2 else None,
        "status": status,
        "reason": reason,
        "probe_status": None,
        "started_ms": None,
        "duration_ms": None,
        "depends_on": [],
        "blocked_by": None,
        "evidence": {},
        "remediation": "",
    }
    base.update(over)
    return base


WAITS = "not run: waits on tcp:api.example.test:443, which failed"
EXPECTED = {
    "schema": CHECK_SCHEMA,
    "verdict": "fail",
    "duration_s": 3.021,
    "first_failing_phase": "router-install",
    "counts": {"fail": 1, "blocked": 2, "warn": 1, "skipped": 1, "pass": 1},
    "phases": [
        {
            "id": "router-install",
            "title": "Router install (cluster create or attach)",
            "verdict": "fail",
            "failed": ["tcp:api.example.test:443"],
        },
        {
            "id": "serving",
            "title": "Serving",
            "verdict": "blocked",
            "failed": ["tcp:api.example.test:443"],
        },
    ],
    "checks": [
        _entry(
            "dns:api.example.test",
            "dns",
            "pass",
            "203.0.113.7 from 10.0.0.53",
            probe_status="ok",
            started_ms=0.0,
            duration_ms=12.5,
            evidence={"addresses": ["203.0.113.7"], "started_ms": 0.0},
        ),
        _entry(
            "tcp:api.example.test:443",
            "tcp",
            "fail",
            "timeout: nope",
            probe_status="timeout",
            started_ms=12.5,
            duration_ms=3000.0,
            depends_on=["dns:api.example.test"],
            evidence={"started_ms": 12.5},
            remediation="allow TCP 443 to api.example.test",
        ),
        _entry(
            "tls:api.example.test:443",
            "tls",
            "blocked",
            WAITS,
            depends_on=["tcp:api.example.test:443"],
            blocked_by="tcp:api.example.test:443",
            remediation="fix tcp:api.example.test:443 first",
        ),
        _entry(
            "http:api.example.test:443",
            "http",
            "blocked",
            WAITS,
            depends_on=["tls:api.example.test:443"],
            blocked_by="tcp:api.example.test:443",
            remediation="fix tcp:api.example.test:443 first",
        ),
        _entry(
            "dns:db.example.test",
            "dns",
            "warn",
            "nxdomain: nope",
            probe_status="nxdomain",
            started_ms=3012.5,
            duration_ms=8.0,
            depends_on=["phase:router-install"],
            evidence={"started_ms": 3012.5},
            remediation="create the record",
        ),
        _entry(
            "tcp:db.example.test:5432",
            "tcp",
            "skipped",
            "dns:db.example.test was skipped",
            depends_on=["dns:db.example.test"],
        ),
    ],
}


def test_small_result_is_exactly_as_documented(small_plan: Plan, small_result: Evaluation) -> None:
    text = CHECK_FORMATS["json"](small_result, small_plan)
    assert json.loads(text) == EXPECTED
    assert json.loads(text) == result_document(small_result, small_plan)


def test_checks_follow_plan_order_whatever_order_the_findings_come_in(
    small_plan: Plan, small_result: Evaluation
) -> None:
    shuffled = Evaluation(
        tuple(reversed(small_result.findings)),
        small_result.phases,
        small_result.verdict,
        small_result.first_failing_phase,
        small_result.duration_s,
    )
    assert CHECK_FORMATS["json"](shuffled, small_plan) == CHECK_FORMATS["json"](
        small_result, small_plan
    )


def test_one_check_per_line(small_plan: Plan, small_result: Evaluation) -> None:
    lines = CHECK_FORMATS["json"](small_result, small_plan).splitlines()
    assert sum(line.startswith('    {"id": "') for line in lines) == 2 + 6
