"""A preflight result as JUnit XML, the shape Jenkins, GitLab and GitHub test reporters read.

One `<testsuite>` per phase (`aksflight.<phase>`), one `<testcase>` per check id, so a CI
system tracks each check across runs. A failed check has a `<failure>` whose `type` is what
the probe saw (`nxdomain`, `timeout`…); blocked and skipped checks are `<skipped>` (a
blocked one names the check it waited on); a warning passes and says why in
`<system-out>`. Built with ElementTree, text cleaned of characters XML 1.0 cannot hold.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from reports._common import (
    DEFAULT_OPTIONS,
    Options,
    blocked_message,
    duration_ms,
    evidence,
    ordered_findings,
    printable,
    probe_status,
)
from rules.model import PHASE_ORDER, PHASE_TITLES, Evaluation, Finding, Phase, Status
from rules.plan import Plan

SUITE_PREFIX = "aksflight."


def _seconds(milliseconds: float) -> str:
    return f"{milliseconds / 1000:.3f}"


def result_junit(evaluation: Evaluation, plan: Plan, options: Options = DEFAULT_OPTIONS) -> str:
    """The evaluation as a JUnit XML document (UTF-8, with an XML declaration)."""
    del options
    findings = ordered_findings(evaluation.findings, plan)
    by_phase: dict[Phase, list[Finding]] = {phase: [] for phase in plan.phases}
    for finding in findings:
        by_phase.setdefault(finding.check.phase, []).append(finding)
    verdicts = {verdict.phase: verdict.status for verdict in evaluation.phases}

    root = ET.Element("testsuites", name="aksflight preflight")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for phase in sorted(by_phase, key=PHASE_ORDER.index):
        suite = _suite(phase, by_phase[phase], verdicts.get(phase))
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{evaluation.duration_s:.3f}")
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _suite(phase: Phase, findings: list[Finding], verdict: Status | None) -> ET.Element:
    name = f"{SUITE_PREFIX}{phase.value}"
    suite = ET.Element("testsuite", name=name)
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="phase", value=phase.value)
    ET.SubElement(properties, "property", name="title", value=PHASE_TITLES[phase])
    if verdict is not None:
        ET.SubElement(properties, "property", name="verdict", value=verdict.value)
    failures = skipped = 0
    total_ms = 0.0
    for finding in findings:
        suite.append(_case(name, finding))
        total_ms += duration_ms(finding) or 0.0
        if finding.status is Status.FAIL:
            failures += 1
        elif finding.status in (Status.BLOCKED, Status.SKIPPED):
            skipped += 1
    suite.set("tests", str(len(findings)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    suite.set("time", _seconds(total_ms))
    return suite


def _case(classname: str, finding: Finding) -> ET.Element:
    check = finding.check
    case = ET.Element(
        "testcase",
        classname=classname,
        name=printable(check.id),
        time=_seconds(duration_ms(finding) or 0.0),
    )
    reason = printable(finding.reason)
    if finding.status is Status.FAIL:
        failure = ET.SubElement(
            case, "failure", message=reason, type=probe_status(finding) or finding.status.value
        )
        failure.text = _details(finding)
    elif finding.status is Status.BLOCKED:
        ET.SubElement(case, "skipped", message=blocked_message(finding))
    elif finding.status is Status.SKIPPED:
        ET.SubElement(case, "skipped", message=reason or "skipped")
    elif finding.status is Status.WARN:
        out = ET.SubElement(case, "system-out")
        out.text = f"warning: {_details(finding)}"
    return case


def _details(finding: Finding) -> str:
    """Reason, remediation and evidence as the body of a failure or a warning."""
    parts = [printable(finding.reason)]
    if finding.remediation:
        parts.append(f"remediation: {printable(finding.remediation)}")
    facts = evidence(finding)
    if facts:
        parts.append("evidence: " + printable(json.dumps(facts, sort_keys=True, default=str)))
    return "\n".join(parts)
