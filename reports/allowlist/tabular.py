"""CSV (one row per rule, for spreadsheets and tickets) and plain text (grouped by phase)."""

from __future__ import annotations

import csv
import io

from reports.allowlist import safety
from reports.allowlist.ruleset import Allowlist, AllowRule
from rules.model import PHASE_TITLES

CSV_COLUMNS = (
    "rule",
    "destination",
    "destination_type",
    "protocol",
    "port",
    "sources",
    "requirements",
    "phases",
    "severity",
    "purpose",
    "documentation",
)


def _cell(value: str) -> str:
    """Spreadsheets run cells that start with = + - @ as formulas; quote them as text."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def _row(rule: AllowRule, sources: tuple[str, ...]) -> list[str]:
    where = f"rule {rule.name}"
    return [
        _cell(v)
        for v in (
            rule.name,
            rule.destination.value,
            rule.destination.kind.value,
            rule.protocol.value,
            str(safety.port(rule.port, where)),
            " ".join(sources),
            " ".join(rule.requirement_ids),
            " ".join(p.value for p in rule.phases),
            rule.severity,
            safety.text("; ".join(rule.purposes), where),
            safety.text(" + ".join(rule.documentation), where),
        )
    ]


def render_csv(allowlist: Allowlist) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    sources = tuple(safety.cidr(c, "source CIDR") for c in allowlist.source_cidrs)
    writer.writerows(_row(rule, sources) for rule in allowlist.rules)
    return buffer.getvalue()


def render_txt(allowlist: Allowlist) -> str:
    sources = ", ".join(safety.cidr(c, "source CIDR") for c in allowlist.source_cidrs)
    lines = [allowlist.title, f"from: {sources or '(no source CIDRs given)'}"]
    for phase in allowlist.phases:
        rules = [r for r in allowlist.rules if r.phase is phase]
        if not rules:
            continue
        lines += ["", f"{PHASE_TITLES[phase]} ({phase.value})"]
        for rule in rules:
            lines.append(
                f"  {rule.protocol.value:<5} {rule.port:>5}  {rule.destination.value}"
                f"  [{', '.join(rule.requirement_ids)}]"
            )
            lines.append(f"        {safety.text('; '.join(rule.purposes), rule.name)}")
            lines.append(
                f"        source: {safety.text(' + '.join(rule.documentation), rule.name)}"
            )
    if allowlist.skipped:
        lines += ["", "Not in any egress rule"]
        for skipped in allowlist.skipped:
            reason = safety.text(skipped.reason, skipped.requirement_id)
            lines.append(f"  {skipped.requirement_id}: {reason}")
    for warning in allowlist.notes:
        lines.append(f"warning: {safety.text(warning, 'warning')}")
    return "\n".join(lines) + "\n"
