"""A preflight result for people: a console summary (`table`) and Markdown for a PR comment.

Both lead with the verdict and the first phase that breaks (what the deployment would do),
then the failures with what to change, then the rest. The Markdown keeps the full list of
checks in a collapsed `<details>` block so a pull-request comment stays short.
"""

from __future__ import annotations

from rich.console import Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from reports._common import (
    DEFAULT_OPTIONS,
    Options,
    blocked_counts,
    blocked_message,
    counts,
    duration_ms,
    ordered_findings,
    phase_number,
    plural,
    printable,
)
from reports._text import console, md_code, md_text, plain, rendered
from rules.model import PHASE_SYMPTOMS, PHASE_TITLES, Evaluation, Finding, Phase, Status
from rules.plan import Plan

STATUS_STYLE = {
    Status.PASS: "green",
    Status.WARN: "yellow",
    Status.FAIL: "bold red",
    Status.BLOCKED: "magenta",
    Status.SKIPPED: "dim",
}
STATUS_MARK = {
    Status.PASS: "✅",
    Status.WARN: "⚠️",
    Status.FAIL: "❌",
    Status.BLOCKED: "⛔",
    Status.SKIPPED: "⏭️",
}


def _tally(findings: list[Finding]) -> str:
    """`19 pass, 1 fail, 12 blocked` (statuses with no finding left out)."""
    tally = counts(findings)
    return ", ".join(f"{n} {status}" for status, n in tally.items() if n) or "no checks"


def _phase_findings(findings: list[Finding]) -> dict[Phase, list[Finding]]:
    by_phase: dict[Phase, list[Finding]] = {}
    for finding in findings:
        by_phase.setdefault(finding.check.phase, []).append(finding)
    return by_phase


def _headline(evaluation: Evaluation, findings: list[Finding]) -> str:
    took = f"{evaluation.duration_s:.1f} s"
    return f"{plural(len(findings), 'check')} ({_tally(findings)}) in {took}"


def _took(finding: Finding) -> str:
    took = duration_ms(finding)
    return "" if took is None else f"{took:.0f} ms"


# -- console ------------------------------------------------------------------------------


def result_table(evaluation: Evaluation, plan: Plan, options: Options = DEFAULT_OPTIONS) -> str:
    """The verdict, a per-phase timeline, failures (with remediation) first, then counts."""
    out, buffer = console(options)
    findings = ordered_findings(evaluation.findings, plan)
    verdict = evaluation.verdict
    line = Text("aksflight preflight: ", style="bold") + Text(
        verdict.value.upper(), style=STATUS_STYLE[verdict]
    )
    first = evaluation.first_failing_phase
    if first is not None:
        line += plain(
            f" — first failing phase: {phase_number(first)}. {PHASE_TITLES[first]} "
            f"({PHASE_SYMPTOMS[first]})"
        )
    out.print(line)
    out.print(plain(_headline(evaluation, findings)))
    out.print()
    out.print(_phase_table(evaluation, findings))
    blocked = blocked_counts(findings)
    for status, title in ((Status.FAIL, "Failures"), (Status.WARN, "Warnings")):
        chosen = [f for f in findings if f.status is status]
        if not chosen:
            continue
        out.print()
        out.print(Text(f"{title} ({len(chosen)})", style=STATUS_STYLE[status]))
        for finding in chosen:
            out.print(_problem(finding, blocked.get(finding.check.id, 0)))
    skipped = [f for f in findings if f.status is Status.SKIPPED]
    if skipped:
        out.print()
        out.print(Text(f"Skipped ({len(skipped)})", style="dim"))
        for finding in skipped:
            out.print(Text("• ") + plain(finding.check.id) + Text(": ") + plain(finding.reason))
    return rendered(buffer)


def _phase_table(evaluation: Evaluation, findings: list[Finding]) -> Table:
    by_phase = _phase_findings(findings)
    table = Table(title=None, expand=True, show_edge=False, header_style="bold", pad_edge=False)
    table.add_column("#", no_wrap=True)
    table.add_column("Phase", ratio=3)
    table.add_column("Verdict", no_wrap=True)
    table.add_column("Checks first needed here", ratio=3)
    table.add_column("Failed (or blocked by)", ratio=3, overflow="fold")
    for verdict in evaluation.phases:
        phase = verdict.phase
        table.add_row(
            str(phase_number(phase)),
            plain(PHASE_TITLES[phase]),
            Text(verdict.status.value, style=STATUS_STYLE[verdict.status]),
            plain(_tally(by_phase.get(phase, []))),
            plain(", ".join(verdict.failed)),
        )
    return table


def _problem(finding: Finding, blocks: int) -> Group:
    head = Text("• ") + Text(printable(finding.check.id), style="bold")
    head += Text(f"  ({finding.check.phase.value})")
    body = [plain(finding.reason)]
    if finding.remediation:
        body.append(Text("fix: ", style="cyan") + plain(finding.remediation))
    if blocks:
        body.append(Text(f"blocks {plural(blocks, 'other check')}", style="magenta"))
    return Group(head, Padding(Group(*body), (0, 0, 0, 2)))


# -- Markdown -----------------------------------------------------------------------------


def result_markdown(evaluation: Evaluation, plan: Plan, options: Options = DEFAULT_OPTIONS) -> str:
    """A pull-request comment or GitHub step summary: verdict, phases, failures, details."""
    del options
    findings = ordered_findings(evaluation.findings, plan)
    verdict = evaluation.verdict
    lines = [f"## {STATUS_MARK[verdict]} aksflight preflight: {verdict.value}", ""]
    first = evaluation.first_failing_phase
    if first is not None:
        lines += [
            f"First failing phase: **{phase_number(first)}. {md_text(PHASE_TITLES[first])}** "
            f"— {md_text(PHASE_SYMPTOMS[first])}.",
            "",
        ]
    lines += [md_text(_headline(evaluation, findings)) + ".", ""]
    by_phase = _phase_findings(findings)
    lines += ["| # | Phase | Verdict | Checks first needed here | Failed (or blocked by) |"]
    lines += ["|---|---|---|---|---|"]
    for phase_verdict in evaluation.phases:
        phase = phase_verdict.phase
        failed = ", ".join(md_code(cid) for cid in phase_verdict.failed)
        lines.append(
            f"| {phase_number(phase)} | {md_text(PHASE_TITLES[phase])} "
            f"| {STATUS_MARK[phase_verdict.status]} {phase_verdict.status.value} "
            f"| {md_text(_tally(by_phase.get(phase, [])))} | {failed} |"
        )
    blocked = blocked_counts(findings)
    for status, title in ((Status.FAIL, "Failures"), (Status.WARN, "Warnings")):
        chosen = [f for f in findings if f.status is status]
        if chosen:
            lines += ["", f"### {title}", ""]
            for finding in chosen:
                lines += _md_problem(finding, blocked.get(finding.check.id, 0))
    lines += ["", f"<details><summary>All {plural(len(findings), 'check')}</summary>", ""]
    lines += ["| Check | Phase | Status | Reason | Time |", "|---|---|---|---|---|"]
    for finding in findings:
        reason = blocked_message(finding) if finding.status is Status.BLOCKED else finding.reason
        lines.append(
            f"| {md_code(finding.check.id)} | {md_text(finding.check.phase.value)} "
            f"| {STATUS_MARK[finding.status]} {finding.status.value} | {md_text(reason)} "
            f"| {_took(finding)} |"
        )
    lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def _md_problem(finding: Finding, blocks: int) -> list[str]:
    check = finding.check
    lines = [
        f"- {STATUS_MARK[finding.status]} {md_code(check.id, in_table=False)} "
        f"({md_text(check.phase.value)}): {md_text(finding.reason)}"
    ]
    if finding.remediation:
        lines.append(f"  - **Fix:** {md_text(finding.remediation)}")
    if blocks:
        lines.append(f"  - Blocks {plural(blocks, 'other check')}.")
    return lines
