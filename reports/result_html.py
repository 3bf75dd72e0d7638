"""A preflight result as one self-contained HTML file: no scripts, fonts or images to fetch.

It shows the verdict, the phase timeline as an inline SVG (see `result_svg`), what to fix
(failures and warnings with their remediation), the phases, and every finding with its
evidence folded in `<details>`. The whole page is an ElementTree serialised as HTML, so
every string from a config, a catalogue or a probe is escaped by the serialiser.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from reports._common import (
    DEFAULT_OPTIONS,
    Options,
    blocked_counts,
    blocked_message,
    counts,
    duration_ms,
    evidence,
    ordered_findings,
    phase_number,
    plural,
    printable,
)
from reports.result_svg import layout, timeline_svg
from rules.model import PHASE_SYMPTOMS, PHASE_TITLES, Evaluation, Finding, Status
from rules.plan import Plan

STYLE = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       margin: 0 auto; max-width: 1100px; padding: 24px; color: #1f2328; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
code, .id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
            font-size: 12.5px; overflow-wrap: anywhere; }
.verdict { border-left: 6px solid #888; padding: 10px 16px; background: #f6f8fa; }
.verdict.fail { border-color: #d64541; } .verdict.warn { border-color: #e0a100; }
.verdict.pass { border-color: #2e9e5b; } .verdict.blocked { border-color: #8e44ad; }
.status { display: inline-block; min-width: 56px; text-align: center; border-radius: 10px;
          padding: 0 8px; font-size: 12px; font-weight: 600; color: #fff; }
.status.pass { background: #2e9e5b; } .status.warn { background: #e0a100; color: #111; }
.status.fail { background: #d64541; } .status.skipped { background: #c9ccd1; color: #111; }
.status.blocked { background: repeating-linear-gradient(45deg, #8e44ad 0 4px, #b07cc6 4px 8px); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px;
         border-bottom: 1px solid #eaeef2; }
table.findings td:first-child { width: 36%; }
td.nowrap { white-space: nowrap; }
th { background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; white-space: nowrap; }
.problem { border: 1px solid #d0d7de; border-left: 5px solid #d64541; border-radius: 6px;
           padding: 8px 12px; margin: 10px 0; }
.problem.warn { border-left-color: #e0a100; }
.problem p { margin: 4px 0; }
.fix { background: #f0f6ff; border-radius: 4px; padding: 6px 10px; }
.legend span { margin-right: 14px; white-space: nowrap; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
          vertical-align: -1px; margin-right: 4px; }
details pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f8fa;
              padding: 6px; margin: 4px 0 0; font-size: 12px; }
.muted { color: #57606a; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
"""

LEGEND = (
    (Status.PASS, "background:#2e9e5b"),
    (Status.WARN, "background:#e0a100"),
    (Status.FAIL, "background:#d64541"),
    (Status.BLOCKED, "background:repeating-linear-gradient(45deg,#8e44ad 0 3px,#eadcf0 3px 6px)"),
    (Status.SKIPPED, "background:#c9ccd1"),
)


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    """A child element; `class_` stands for the reserved word `class`."""
    if "class_" in attrs:
        attrs["class"] = attrs.pop("class_")
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = printable(text)
    return element


def _status(parent: ET.Element, status: Status) -> None:
    _el(parent, "span", status.value, class_=f"status {status.value}")


def result_html(evaluation: Evaluation, plan: Plan, options: Options = DEFAULT_OPTIONS) -> str:
    """The whole report as an HTML5 document (UTF-8)."""
    del options
    findings = ordered_findings(evaluation.findings, plan)
    verdict = evaluation.verdict
    page = ET.Element("html", lang="en")
    head = _el(page, "head")
    _el(head, "meta", charset="utf-8")
    _el(head, "meta", name="viewport", content="width=device-width, initial-scale=1")
    _el(head, "title", f"aksflight preflight: {verdict.value}")
    ET.SubElement(head, "style").text = STYLE
    body = _el(page, "body")
    _header(body, evaluation, findings)
    _el(body, "h2", "Timeline")
    plot = layout(evaluation, plan)
    caption = (
        "Each bar runs from a probe's start to its end; checks that did not run sit where "
        "they would have started."
        if plot.timed
        else "No probe recorded its start time, so checks are laid out by plan step: "
        "a check runs after everything before it."
    )
    _el(body, "p", caption, class_="muted")
    body.append(timeline_svg(evaluation, plan, plot))
    _legend(body)
    _fixes(body, findings)
    _phases(body, evaluation)
    _findings(body, findings)
    html = ET.tostring(page, encoding="unicode", method="html")
    return f"<!DOCTYPE html>\n{html}\n"


def _header(body: ET.Element, evaluation: Evaluation, findings: list[Finding]) -> None:
    box = _el(body, "header", class_=f"verdict {evaluation.verdict.value}")
    _el(box, "h1", f"aksflight preflight: {evaluation.verdict.value.upper()}")
    first = evaluation.first_failing_phase
    if first is not None:
        line = _el(box, "p", "First failing phase: ")
        _el(line, "strong", f"{phase_number(first)}. {PHASE_TITLES[first]}")
        _el(line, "span", f" — {PHASE_SYMPTOMS[first]}.")
    tally = ", ".join(f"{n} {s}" for s, n in counts(findings).items() if n)
    _el(
        box,
        "p",
        f"{plural(len(findings), 'check')} ({tally or 'none'}) in {evaluation.duration_s:.1f} s",
        class_="muted",
    )


def _legend(body: ET.Element) -> None:
    legend = _el(body, "p", class_="legend muted")
    for status, style in LEGEND:
        item = _el(legend, "span")
        _el(item, "span", "", class_="swatch", style=style)
        _el(item, "span", status.value)
    _el(legend, "span", "dashed line: the phase's gate (everything it needs has ended)")


def _fixes(body: ET.Element, findings: list[Finding]) -> None:
    problems = [f for f in findings if f.status in (Status.FAIL, Status.WARN)]
    _el(body, "h2", "What to fix")
    if not problems:
        _el(body, "p", "Nothing: no check failed or warned.", class_="muted")
        return
    blocked = blocked_counts(findings)
    waiting: dict[str, list[str]] = {}
    for finding in findings:
        if finding.status is Status.BLOCKED and finding.blocked_by:
            waiting.setdefault(finding.blocked_by, []).append(finding.check.id)
    for finding in sorted(problems, key=lambda f: f.status is not Status.FAIL):
        card = _el(body, "div", class_=f"problem {finding.status.value}")
        title = _el(card, "p")
        _status(title, finding.status)
        _el(title, "code", f" {finding.check.id}", class_="id")
        _el(title, "span", f"  ({finding.check.phase.value})", class_="muted")
        _el(card, "p", finding.reason)
        if finding.remediation:
            fix = _el(card, "p", class_="fix")
            _el(fix, "strong", "Fix: ")
            _el(fix, "span", finding.remediation)
        count = blocked.get(finding.check.id, 0)
        if count:
            shown = waiting[finding.check.id][:12]
            more = f" and {count - len(shown)} more" if count > len(shown) else ""
            _el(
                card,
                "p",
                f"Blocks {plural(count, 'other check')}: {', '.join(shown)}{more}.",
                class_="muted",
            )


def _phases(body: ET.Element, evaluation: Evaluation) -> None:
    _el(body, "h2", "Phases")
    table = _el(body, "table")
    _row(table, "th", ["#", "Phase", "Verdict", "Without it", "Failed (or blocked by)"])
    for verdict in evaluation.phases:
        row = _el(table, "tr")
        _el(row, "td", str(phase_number(verdict.phase)), class_="num")
        _el(row, "td", PHASE_TITLES[verdict.phase])
        _status(_el(row, "td"), verdict.status)
        _el(row, "td", PHASE_SYMPTOMS[verdict.phase], class_="muted")
        _el(row, "td", ", ".join(verdict.failed), class_="id")


def _findings(body: ET.Element, findings: list[Finding]) -> None:
    _el(body, "h2", f"All {plural(len(findings), 'check')}")
    table = _el(body, "table", class_="findings")
    _row(table, "th", ["Check", "Phase", "Status", "Reason", "Time"])
    for finding in findings:
        row = _el(table, "tr")
        _el(row, "td", finding.check.id, class_="id")
        _el(row, "td", finding.check.phase.value, class_="nowrap")
        _status(_el(row, "td"), finding.status)
        cell = _el(row, "td")
        reason = blocked_message(finding) if finding.status is Status.BLOCKED else finding.reason
        _el(cell, "div", reason)
        if finding.remediation and finding.status is not Status.BLOCKED:
            _el(cell, "div", f"Fix: {finding.remediation}", class_="muted")
        facts = evidence(finding)
        if facts:
            fold = _el(cell, "details")
            _el(fold, "summary", "evidence", class_="muted")
            _el(fold, "pre", json.dumps(facts, indent=2, sort_keys=True, default=str))
        took = duration_ms(finding)
        _el(row, "td", "" if took is None else f"{took:.0f} ms", class_="num")


def _row(table: ET.Element, cell: str, values: list[str]) -> None:
    row = _el(table, "tr")
    for value in values:
        _el(row, cell, value)
