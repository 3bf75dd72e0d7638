"""`aksflight plan -o json`: exact keys and values for a small plan, stable order, speed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from reports import PLAN_FORMATS, PLAN_SCHEMA, plan_document
from rules.model import Phase, Protocol, Requirement
from rules.plan import Plan, build_plan
from tests.reports.conftest import example_plan, small_requirements

API = [
    "dns:api.example.test",
    "tcp:api.example.test:443",
    "tls:api.example.test:443",
    "http:api.example.test:443",
]


def _check(cid: str, kind: str, depends_on: list[str], **over: object) -> dict[str, object]:
    api = cid.split(":")[1] == "api.example.test"
    base: dict[str, object] = {
        "id": cid,
        "phase": "router-install" if api else "serving",
        "phases": ["router-install", "serving"] if api else ["serving"],
        "kind": kind,
        "target": cid.split(":")[1],
        "port": int(cid.split(":")[2]) if cid.count(":") == 2 else None,
        "depends_on": depends_on,
        "purpose": "the API" if api else "feature store",
        "source": "doc A" if api else "config",
        "breaks": "install hangs" if api else "scoring fails",
        "severity": "fail" if api else "warn",
        "requirements": ["t/api"] if api else ["t/db"],
        "expect_private": False if kind == "dns" else None,
        "private_link_zone": None,
        "probe": True,
        "skip_reason": None,
    }
    base.update(over)
    return base


def _requirement(
    rid: str, host: str, port: int, protocol: str, **over: object
) -> dict[str, object]:
    base: dict[str, object] = {
        "id": rid,
        "catalogue": "t",
        "host": host,
        "port": port,
        "protocol": protocol,
        "phases": ["router-install"],
        "purpose": "",
        "source": "",
        "breaks": "",
        "severity": "fail",
        "probed": True,
        "checks": [],
        "note": "",
        "wildcard": False,
        "service_tag": None,
        "fqdn_tag": None,
        "private_endpoint": False,
        "private_link_zone": None,
    }
    base.update(over)
    return base


EXPECTED = {
    "schema": "aksflight.plan/1",
    "phases": [
        {
            "id": "router-install",
            "gate": "phase:router-install",
            "title": "Router install (cluster create or attach)",
            "symptom": "cluster create or attach hangs, then times out",
            "depends_on": None,
            "checks": sorted(API),
        },
        {
            "id": "serving",
            "gate": "phase:serving",
            "title": "Serving",
            "symptom": "the service is Healthy but scoring requests fail",
            "depends_on": "router-install",
            "checks": sorted([*API, "dns:db.example.test", "tcp:db.example.test:5432"]),
        },
    ],
    "checks": [
        _check(API[0], "dns", []),
        _check(API[1], "tcp", [API[0]]),
        _check(API[2], "tls", [API[1]]),
        _check(API[3], "http", [API[2]]),
        _check("dns:db.example.test", "dns", ["phase:router-install"]),
        _check("tcp:db.example.test:5432", "tcp", ["dns:db.example.test"]),
    ],
    "requirements": [
        _requirement(
            "t/api",
            "api.example.test",
            443,
            "https",
            phases=["router-install", "serving"],
            purpose="the API",
            source="doc A",
            breaks="install hangs",
            checks=API,
        ),
        _requirement(
            "t/data",
            "*.data.example.test",
            443,
            "https",
            purpose="layers",
            source="doc B",
            probed=False,
            note="a wildcard",
            wildcard=True,
        ),
        _requirement(
            "t/db",
            "db.example.test",
            5432,
            "tcp",
            phases=["serving"],
            purpose="feature store",
            source="config",
            breaks="scoring fails",
            severity="warn",
            checks=["dns:db.example.test", "tcp:db.example.test:5432"],
        ),
    ],
    "timeline": [
        [API[0]],
        [API[1]],
        [API[2]],
        [API[3]],
        ["phase:router-install"],
        ["dns:db.example.test"],
        ["tcp:db.example.test:5432"],
        ["phase:serving"],
    ],
}


def test_small_plan_document_is_exactly_as_documented(small_plan: Plan) -> None:
    assert json.loads(PLAN_FORMATS["json"](small_plan)) == EXPECTED


def test_text_is_the_document_and_one_item_per_line(small_plan: Plan) -> None:
    text = PLAN_FORMATS["json"](small_plan)
    assert json.loads(text) == plan_document(small_plan)
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert lines[1] == f'  "schema": "{PLAN_SCHEMA}",'
    # Each check sits on its own line, so a diff of two plans shows which checks changed.
    check_lines = [line for line in lines if line.startswith('    {"id": "')]
    assert len(check_lines) == 2 + 6 + 3  # phases, checks, requirements


def test_same_config_gives_byte_identical_output() -> None:
    first = PLAN_FORMATS["json"](example_plan())
    second = PLAN_FORMATS["json"](example_plan())
    assert first == second


def test_unprobeable_check_says_why_and_requirement_lists_its_checks() -> None:
    plan = example_plan()
    document = plan_document(plan)
    peer = next(c for c in document["checks"] if c["id"] == "peer:router")
    assert peer["probe"] is False
    assert "--in-cluster" in peer["skip_reason"]
    by_id = {r["id"]: r for r in document["requirements"]}
    assert by_id["azureml-aks/mcr-data"]["probed"] is False
    assert by_id["azureml-aks/mcr-data"]["wildcard"] is True
    assert by_id["azureml-aks/mcr"]["checks"] == [
        "dns:mcr.microsoft.com",
        "tcp:mcr.microsoft.com:443",
        "tls:mcr.microsoft.com:443",
        "http:mcr.microsoft.com:443",
    ]


def test_depends_on_is_the_graph_predecessors_including_gates() -> None:
    plan = example_plan()
    for check in plan_document(plan)["checks"]:
        assert check["depends_on"] == sorted(plan.graph.predecessors(check["id"]))
    gates = {c["id"]: c["depends_on"] for c in plan_document(plan)["checks"]}
    assert gates["k8s:version"] == sorted(
        ["phase:router-install", "tls:prod-aks-1a2b3c4d.hcp.eastus.azmk8s.io:443"]
    )


def test_timeline_covers_every_node_once() -> None:
    plan = example_plan()
    flat = [node for step in plan_document(plan)["timeline"] for node in step]
    assert sorted(flat) == sorted(plan.graph.nodes)


def _large_plan(hosts: int) -> Plan:
    reqs = small_requirements() + [
        Requirement(
            id=f"x/{i}",
            catalogue="extra",
            host=f"dep{i}.example.com",
            port=443,
            protocol=Protocol.HTTPS,
            phases=(Phase.SERVING,),
            purpose=f"dependency {i}",
            source="config: extra_dependencies",
            breaks="scoring fails",
        )
        for i in range(hosts)
    ]
    plan = build_plan(reqs)
    plan.order()  # cached by the plan; not what is measured
    return plan


@pytest.mark.slow
def test_thirty_thousand_checks_render_well_under_half_a_second() -> None:
    plan = _large_plan(7500)
    assert len(plan.checks) >= 30_000

    def best_of_three(run: Callable[[], object]) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return min(times)

    document = plan_document(plan)
    floor = best_of_three(lambda: json.dumps(document))  # the C encoder alone, same data
    took = best_of_three(lambda: PLAN_FORMATS["json"](plan))
    assert json.loads(PLAN_FORMATS["json"](plan))["checks"][-1]["id"].startswith("http:dep")
    # About a quarter of a second on a quiet machine; a busy shared one slows the C encoder
    # just as much, so the bound is relative to it there.
    assert took < max(0.5, 2.5 * floor), (took, floor)
