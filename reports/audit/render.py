"""The audit result as a console table, JSON, or Markdown.

Rule names come from the audited policy, which is outside input: every string from it is
cleaned (control characters replaced, length capped) and escaped for the target format.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reports.audit.errors import AuditError
from reports.audit.evaluate import AuditResult, RequirementVerdict, Verdict

AUDIT_SCHEMA = "aksflight.audit/v1"
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def clean(value: str, limit: int = 300) -> str:
    text = _UNPRINTABLE.sub("?", value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _summary(result: AuditResult) -> dict[str, int]:
    counts = {v.value: 0 for v in Verdict}
    for verdict in result.verdicts:
        counts[verdict.verdict.value] += 1
    return counts


def audit_document(result: AuditResult) -> dict[str, Any]:
    return {
        "schema": AUDIT_SCHEMA,
        "verdict": "fail" if result.failed else "pass",
        "sources": list(result.sources),
        "policy": {"groups": [clean(g) for g in result.groups], "rules": result.rule_count},
        "summary": _summary(result),
        "requirements": [
            {
                "id": v.requirement_id,
                "destination": v.destination,
                "protocol": v.protocol.value,
                "port": v.port,
                "phases": [p.value for p in v.phases],
                "severity": v.severity,
                "verdict": v.verdict.value,
                "decisions": [
                    {
                        "rule": clean(d.rule),
                        "action": d.action,
                        "sources": list(d.sources),
                        "some_names": d.some_names,
                    }
                    for d in v.decisions
                ],
                "uncovered_sources": list(v.uncovered),
                "notes": [clean(n) for n in v.notes],
            }
            for v in result.verdicts
        ],
        "broad_rules": [
            {"rule": clean(b.rule), "reasons": list(b.reasons)} for b in result.broad_rules
        ],
        "not_audited": [
            {"id": s.requirement_id, "reason": clean(s.reason)} for s in result.skipped
        ],
        "policy_notes": [clean(n) for n in result.policy_notes],
    }


def audit_json(result: AuditResult) -> str:
    return json.dumps(audit_document(result), indent=2) + "\n"


def _mark(verdict: RequirementVerdict) -> str:
    if verdict.verdict is Verdict.ALLOWED:
        return "allowed"
    return verdict.verdict.value + (" (warn)" if verdict.severity != "fail" else "")


def _md(value: str) -> str:
    text = clean(value)
    for char in "\\|`*_<>[]":
        text = text.replace(char, "\\" + char)
    return text


def audit_markdown(result: AuditResult) -> str:
    counts = _summary(result)
    lines = [
        "# Azure Firewall policy audit",
        "",
        f"**{'FAIL' if result.failed else 'PASS'}**: "
        + ", ".join(f"{n} {k}" for k, n in counts.items())
        + f" (rules: {result.rule_count}, groups: {len(result.groups)}; sources "
        + ", ".join(result.sources)
        + ")",
        "",
        "| requirement | phase | destination | verdict | detail |",
        "|---|---|---|---|---|",
    ]
    for v in result.verdicts:
        lines.append(
            f"| `{v.requirement_id}` | {v.phases[0].value} | "
            f"{_md(v.destination)} {v.protocol.value}/{v.port} | {_mark(v)} | {_md(v.detail)} |"
        )
    if result.broad_rules:
        lines += ["", "## Rules that allow more than needed", ""]
        lines += [f"- {_md(b.rule)}: {', '.join(b.reasons)}" for b in result.broad_rules]
    notes = [(v.requirement_id, n) for v in result.verdicts for n in v.notes]
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- `{rid}`: {_md(n)}" for rid, n in notes]
    return "\n".join(lines) + "\n"


def audit_table(result: AuditResult, width: int = 120) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False)
    table = Table(title="Azure Firewall policy audit", title_justify="left")
    for column in ("requirement", "phase", "destination", "verdict", "detail"):
        table.add_column(column, overflow="fold")
    for v in result.verdicts:
        table.add_row(
            v.requirement_id,
            v.phases[0].value,
            escape(f"{clean(v.destination)} {v.protocol.value}/{v.port}"),
            _mark(v),
            escape(clean(v.detail)),
        )
    console.print(table)
    for broad in result.broad_rules:
        console.print(escape(f"broad: {clean(broad.rule)}: {', '.join(broad.reasons)}"))
    for v in result.verdicts:
        for note in v.notes:
            console.print(escape(f"note: {v.requirement_id}: {clean(note)}"))
    counts = _summary(result)
    console.print(
        f"{'FAIL' if result.failed else 'PASS'}: "
        + ", ".join(f"{n} {k}" for k, n in counts.items())
        + f" (rules: {result.rule_count}, groups: {len(result.groups)})"
    )
    return out.getvalue()


AUDIT_FORMATS: dict[str, Callable[[AuditResult], str]] = {
    "table": audit_table,
    "json": audit_json,
    "markdown": audit_markdown,
}


def render_audit(fmt: str, result: AuditResult) -> str:
    renderer = AUDIT_FORMATS.get(fmt)
    if renderer is None:
        raise AuditError(f"unknown audit format {fmt!r} (known: {', '.join(AUDIT_FORMATS)})")
    return renderer(result)
