"""`aksflight check -o junit`: parsed back with ElementTree, per suite and per case."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from junitparser import JUnitXml

from reports import CHECK_FORMATS
from rules.model import Evaluation
from rules.plan import Plan
from tests.reports.conftest import hostile_evaluation, hostile_plan


def _parse(evaluation: Evaluation, plan: Plan) -> ET.Element:
    text = CHECK_FORMATS["junit"](evaluation, plan)
    assert text.startswith("<?xml version='1.0' encoding='utf-8'?>\n<testsuites")
    return ET.fromstring(text.encode("utf-8"))


def test_one_suite_per_phase_with_counts_and_ids(
    small_plan: Plan, small_result: Evaluation
) -> None:
    root = _parse(small_result, small_plan)
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "6",
        "1",
        "0",
        "3",
    )
    assert root.get("time") == "3.021"
    suites = {suite.get("name"): suite for suite in root.findall("testsuite")}
    assert list(suites) == ["aksflight.router-install", "aksflight.serving"]

    install = suites["aksflight.router-install"]
    assert (install.get("tests"), install.get("failures"), install.get("skipped")) == (
        "4",
        "1",
        "2",
    )
    assert install.get("time") == "3.013"
    properties = {p.get("name"): p.get("value") for p in install.iter("property")}
    assert properties == {
        "phase": "router-install",
        "title": "Router install (cluster create or attach)",
        "verdict": "fail",
    }
    cases = {case.get("name"): case for case in install.findall("testcase")}
    assert list(cases) == [
        "dns:api.example.test",
        "tcp:api.example.test:443",
        "tls:api.example.test:443",
        "http:api.example.test:443",
    ]
    assert {case.get("classname") for case in cases.values()} == {"aksflight.router-install"}
    assert list(cases["dns:api.example.test"]) == []  # a pass has no children
    assert cases["dns:api.example.test"].get("time") == "0.013"

    failure = cases["tcp:api.example.test:443"].find("failure")
    assert failure is not None
    assert failure.get("type") == "timeout"  # what the probe saw
    assert failure.get("message") == "timeout: nope"
    assert failure.text is not None
    assert "remediation: allow TCP 443 to api.example.test" in failure.text

    for blocked in ("tls:api.example.test:443", "http:api.example.test:443"):
        skipped = cases[blocked].find("skipped")
        assert skipped is not None
        assert "waits on tcp:api.example.test:443" in (skipped.get("message") or "")

    serving = suites["aksflight.serving"]
    assert (serving.get("tests"), serving.get("failures"), serving.get("skipped")) == (
        "2",
        "0",
        "1",
    )
    warn = serving.find("testcase[@name='dns:db.example.test']")
    assert warn is not None and warn.find("failure") is None and warn.find("skipped") is None
    out = warn.find("system-out")
    assert out is not None and out.text is not None
    assert out.text.startswith("warning: nxdomain: nope")
    assert "remediation: create the record" in out.text
    skipped = serving.find("testcase[@name='tcp:db.example.test:5432']/skipped")
    assert skipped is not None
    assert skipped.get("message") == "dns:db.example.test was skipped"


def test_children_follow_the_junit_schema_order(small_plan: Plan, small_result: Evaluation) -> None:
    """properties before testcases; in a case, the outcome before system-out."""
    for suite in _parse(small_result, small_plan).findall("testsuite"):
        tags = [child.tag for child in suite]
        assert tags[0] == "properties" and set(tags[1:]) == {"testcase"}
        for case in suite.findall("testcase"):
            assert [c.tag for c in case] in ([], ["failure"], ["skipped"], ["system-out"])


def test_hostile_text_is_escaped_and_control_characters_kept_out() -> None:
    plan = hostile_plan()
    text = CHECK_FORMATS["junit"](hostile_evaluation(plan), plan)
    assert "<script>" not in text
    assert "\x1b" not in text
    root = ET.fromstring(text.encode("utf-8"))  # well-formed XML 1.0 despite ESC in reasons
    names = [case.get("name") for case in root.iter("testcase")]
    assert 'tcp:evil"&x.ex{a}mple|te;st`end#1\\:443' in names
    assert "tcp:<acr>'\"x.azurecr.io:443" in names
    messages = [f.get("message") or "" for f in root.iter("failure")]
    assert any(m.startswith('<script>alert("x")</script>') and "\\x1b[31m" in m for m in messages)


def test_a_junit_consumer_library_reads_the_same_outcomes(
    small_plan: Plan, small_result: Evaluation, tmp_path: Path
) -> None:
    """junitparser (what GitHub's test-result publishers build on) agrees, case by case."""
    report = tmp_path / "preflight.xml"
    report.write_text(CHECK_FORMATS["junit"](small_result, small_plan), encoding="utf-8")
    xml = JUnitXml.fromfile(str(report))
    outcomes = {}
    for suite in xml:
        for case in suite:
            kinds = [type(result).__name__ for result in case.result]
            outcomes[(suite.name, case.classname, case.name)] = (case.is_passed, kinds)
    assert outcomes == {
        ("aksflight.router-install", "aksflight.router-install", "dns:api.example.test"): (
            True,
            [],
        ),
        ("aksflight.router-install", "aksflight.router-install", "tcp:api.example.test:443"): (
            False,
            ["Failure"],
        ),
        ("aksflight.router-install", "aksflight.router-install", "tls:api.example.test:443"): (
            False,
            ["Skipped"],
        ),
        ("aksflight.router-install", "aksflight.router-install", "http:api.example.test:443"): (
            False,
            ["Skipped"],
        ),
        ("aksflight.serving", "aksflight.serving", "dns:db.example.test"): (True, []),
        ("aksflight.serving", "aksflight.serving", "tcp:db.example.test:5432"): (
            False,
            ["Skipped"],
        ),
    }
    suites = {suite.name: suite for suite in xml}
    install = suites["aksflight.router-install"]
    assert (install.tests, install.failures, install.errors, install.skipped) == (4, 1, 0, 2)
    warned = next(
        case for case in suites["aksflight.serving"] if case.name == "dns:db.example.test"
    )
    assert warned.system_out is not None and warned.system_out.startswith("warning:")
