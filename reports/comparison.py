"""The same checks from several places side by side: where the command runs, and each
node pool (or node) of the cluster, so "resolves on the runner but not on the nodes" is
visible at a glance.

A `Comparison` holds one `Column` per place (its evaluation, or the finding that says why
its probe pod never reported) and the cluster-state findings. Rows are the plan's checks
in plan order; a row `differs` when the places that ran it did not all get one status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from reports._common import DEFAULT_OPTIONS, Options, one_line, plan_rank
from reports._text import console, plain, rendered
from reports.result_text import STATUS_STYLE
from rules.model import Evaluation, Finding, Status
from rules.plan import Plan

SCHEMA = "aksflight-comparison/1"
RUNNER = "runner"


@dataclass(frozen=True, slots=True)
class Column:
    """One place the checks ran from: `where` is runner, pool or node."""

    name: str
    where: str
    evaluation: Evaluation | None
    problem: Finding | None = None
    node: str = ""
    pod: str = ""

    @property
    def verdict(self) -> Status:
        if self.problem is not None:
            return self.problem.status
        return self.evaluation.verdict if self.evaluation is not None else Status.SKIPPED


@dataclass(frozen=True, slots=True)
class Row:
    check_id: str
    cells: tuple[Finding | None, ...]

    @property
    def differs(self) -> bool:
        return len({c.status for c in self.cells if c is not None}) > 1


@dataclass(frozen=True)
class Comparison:
    plan: Plan
    columns: tuple[Column, ...]
    cluster: tuple[Finding, ...] = ()
    # Whose failures decide the verdict: by default every column but the runner's.
    judged: Sequence[str] = field(default_factory=tuple)

    def rows(self) -> list[Row]:
        by_column = [
            {f.check.id: f for f in (c.evaluation.findings if c.evaluation else ())}
            for c in self.columns
        ]
        ids = {cid for found in by_column for cid in found}
        rank = plan_rank(self.plan)
        ordered = sorted(ids, key=lambda cid: (rank.get(cid, len(rank)), cid))
        return [Row(cid, tuple(found.get(cid) for found in by_column)) for cid in ordered]

    @property
    def verdict(self) -> Status:
        judged = set(self.judged) or {c.name for c in self.columns if c.where != RUNNER}
        statuses = {c.verdict for c in self.columns if c.name in judged}
        statuses |= {f.status for f in self.cluster}
        if Status.FAIL in statuses:
            return Status.FAIL
        return Status.WARN if Status.WARN in statuses else Status.PASS


def _cell(finding: Finding | None) -> Text:
    if finding is None:
        return Text("—", style="dim")
    return Text(finding.status.value, style=STATUS_STYLE[finding.status])


def _reason(finding: Finding | None) -> str:
    if finding is None:
        return "not run (no report)"
    return one_line(f"{finding.status.value}: {finding.reason}")


def comparison_table(comparison: Comparison, options: Options = DEFAULT_OPTIONS) -> str:
    """Verdict, the grid (a ≠ marks rows that differ), then the differences with reasons,
    the pods that could not run, and the cluster state."""
    out, buffer = console(options)
    rows = comparison.rows()
    differing = [r for r in rows if r.differs]
    verdict = comparison.verdict
    headline = Text(f"{verdict.value.upper()}", style=STATUS_STYLE[verdict])
    headline.append(
        f"  {len(comparison.columns)} places, {len(rows)} checks, "
        f"{len(differing)} differ between places",
        style="",
    )
    grid = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    grid.add_column("")
    grid.add_column("check", overflow="fold")
    for column in comparison.columns:
        grid.add_column(one_line(column.name), overflow="fold")
    for row in rows:
        grid.add_row(
            Text("≠", style="bold yellow") if row.differs else Text(""),
            plain(row.check_id),
            *(_cell(c) for c in row.cells),
        )
    parts: list[Any] = [headline, Text(""), grid]
    if differing:
        parts += [Text(""), Text("Differences", style="bold")]
        for row in differing:
            parts.append(plain(row.check_id))
            for column, cell in zip(comparison.columns, row.cells, strict=True):
                parts.append(plain(f"  {one_line(column.name)}: {_reason(cell)}"))
    problems = [c for c in comparison.columns if c.problem is not None]
    if problems:
        parts += [Text(""), Text("Probe pods that did not report", style="bold")]
        for column in problems:
            assert column.problem is not None
            parts.append(plain(f"{one_line(column.name)}: {one_line(column.problem.reason)}"))
            if column.problem.remediation:
                parts.append(plain(f"  fix: {one_line(column.problem.remediation)}"))
    if comparison.cluster:
        parts += [Text(""), Text("Cluster state", style="bold")]
        for finding in comparison.cluster:
            line = Text(f"{finding.status.value:<7} ", style=STATUS_STYLE[finding.status])
            line.append_text(plain(f"{finding.check.id}: {one_line(finding.reason)}"))
            parts.append(line)
            if finding.status in (Status.FAIL, Status.WARN) and finding.remediation:
                parts.append(plain(f"        fix: {one_line(finding.remediation)}"))
    out.print(Group(*parts))
    return rendered(buffer)


def _finding_record(finding: Finding) -> dict[str, Any]:
    return {
        "id": finding.check.id,
        "status": finding.status.value,
        "reason": finding.reason,
        "phase": finding.check.phase.value,
        "target": finding.check.target,
        "remediation": finding.remediation,
    }


def _cell_record(finding: Finding | None) -> dict[str, Any] | None:
    if finding is None:
        return None
    record: dict[str, Any] = {"status": finding.status.value, "reason": finding.reason}
    if finding.blocked_by:
        record["blocked_by"] = finding.blocked_by
    if finding.observation is not None:
        record["probe_status"] = finding.observation.status.value
        record["evidence"] = dict(finding.observation.evidence)
    return record


def comparison_document(comparison: Comparison) -> dict[str, Any]:
    rows = comparison.rows()
    return {
        "schema": SCHEMA,
        "verdict": comparison.verdict.value,
        "columns": [
            {
                "name": c.name,
                "where": c.where,
                "verdict": c.verdict.value,
                "node": c.node or None,
                "pod": c.pod or None,
                "problem": _finding_record(c.problem) if c.problem is not None else None,
            }
            for c in comparison.columns
        ],
        "checks": [
            {
                "id": row.check_id,
                "phase": comparison.plan.checks[row.check_id].phase.value
                if row.check_id in comparison.plan.checks
                else None,
                "differs": row.differs,
                "results": {
                    c.name: _cell_record(cell)
                    for c, cell in zip(comparison.columns, row.cells, strict=True)
                },
            }
            for row in rows
        ],
        "differs": [row.check_id for row in rows if row.differs],
        "cluster": [_finding_record(f) for f in comparison.cluster],
    }


def comparison_json(comparison: Comparison, options: Options = DEFAULT_OPTIONS) -> str:
    import json

    return json.dumps(comparison_document(comparison), indent=2, default=str) + "\n"


COMPARISON_FORMATS = {"table": comparison_table, "json": comparison_json}
