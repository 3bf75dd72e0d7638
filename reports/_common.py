"""Helpers every renderer shares: options, text cleaning, and facts derived from a plan.

Renderers take the same two arguments (`plan` or `evaluation, plan`, then `Options`), so the
CLI can map `-o NAME` to a function and pass its width and colour flags uniformly.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from reports.errors import ReportInputError
from rules.model import PHASE_ORDER, Check, Finding, Phase, Requirement, Status
from rules.plan import Plan, gate_id

MIN_WIDTH = 40
MAX_WIDTH = 1000


@dataclass(frozen=True, slots=True)
class Options:
    """How text renderers lay out: console width in columns, ANSI colour or not."""

    width: int = 100
    color: bool = False

    def __post_init__(self) -> None:
        if not MIN_WIDTH <= self.width <= MAX_WIDTH:
            raise ReportInputError(
                f"--width: {self.width} is out of range ({MIN_WIDTH}..{MAX_WIDTH} columns)"
            )


DEFAULT_OPTIONS = Options()

# C0/C1 controls (bar tab and newline), DEL, lone surrogates and the two XML non-characters:
# invalid in XML 1.0 and, for a terminal, a way to inject escape sequences.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def printable(text: str) -> str:
    """`text` with control characters shown as `\\xNN` escapes instead of acted upon."""
    if not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def one_line(text: str) -> str:
    """`printable(text)` with line breaks folded into spaces (for cells and labels)."""
    return " ".join(printable(text).split())


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def target_of(check: Check) -> str:
    """`host:port` or just the host when the check names no port."""
    return check.target if check.port is None else f"{check.target}:{check.port}"


def allowlist_only(plan: Plan) -> list[Requirement]:
    """Requirements no check of the plan tests: wildcards, tags, undocumented names."""
    covered = {rid for check in plan.checks.values() for rid in check.requirement_ids}
    return [req for req in plan.requirements if req.id not in covered]


def node_generations(plan: Plan) -> dict[str, int]:
    """Each node's step in the timeline (topological generation)."""
    return {node: step for step, nodes in enumerate(plan.timeline()) for node in nodes}


def plan_rank(plan: Plan) -> dict[str, int]:
    """Each node's position in the plan's stable order."""
    return {node: index for index, node in enumerate(plan.order())}


def phase_gates(plan: Plan) -> list[tuple[Phase, str]]:
    return [(phase, gate_id(phase)) for phase in plan.phases]


def phase_number(phase: Phase) -> int:
    """1-based position of the phase in the documented order."""
    return PHASE_ORDER.index(phase) + 1


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a large document is built.

    Building tens of thousands of small dicts triggers collections that each walk the whole
    plan graph; nothing built here forms a cycle, so pausing is safe and saves about a third.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# -- findings -----------------------------------------------------------------------------

STATUS_ORDER: tuple[Status, ...] = (
    Status.FAIL,
    Status.BLOCKED,
    Status.WARN,
    Status.SKIPPED,
    Status.PASS,
)


def ordered_findings(findings: Iterable[Finding], plan: Plan) -> list[Finding]:
    """Findings in plan order; any the plan does not know go last, by id."""
    rank = plan_rank(plan)
    last = len(rank)
    return sorted(findings, key=lambda f: (rank.get(f.check.id, last), f.check.id))


def counts(findings: Iterable[Finding]) -> dict[str, int]:
    """How many findings have each status, every status present (zero when none)."""
    tally = {status.value: 0 for status in STATUS_ORDER}
    for finding in findings:
        tally[finding.status.value] += 1
    return tally


def duration_ms(finding: Finding) -> float | None:
    return None if finding.observation is None else finding.observation.duration_ms


def evidence(finding: Finding) -> Mapping[str, Any]:
    return {} if finding.observation is None else finding.observation.evidence


def started_ms(finding: Finding) -> float | None:
    """When the probe started, in ms from the start of the run, if the probe said so."""
    value = evidence(finding).get("started_ms")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def probe_status(finding: Finding) -> str | None:
    """What the probe saw (`nxdomain`, `timeout`…), when a probe ran."""
    return None if finding.observation is None else finding.observation.status.value


def blocked_message(finding: Finding) -> str:
    """What a blocked check waited on: its reason when that names the check, else `waits on`."""
    waited = finding.blocked_by or "an earlier check"
    reason = printable(finding.reason)
    if reason and waited in reason:
        return reason
    return f"waits on {waited}" + (f" ({reason})" if reason else "")


def blocked_counts(findings: Iterable[Finding]) -> dict[str, int]:
    """How many checks each failed check blocked."""
    tally: dict[str, int] = {}
    for finding in findings:
        if finding.status is Status.BLOCKED and finding.blocked_by:
            tally[finding.blocked_by] = tally.get(finding.blocked_by, 0) + 1
    return tally


def dumps_lines(document: Mapping[str, Any]) -> str:
    """JSON with each top-level key, and each item of a top-level list, on its own line.

    Diffs then show which item changed; `json.dumps(indent=...)` would also do that, but
    falls back to the pure-Python encoder, several times slower.
    """
    encode = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "), default=str).encode
    lines = ["{"]
    keys = list(document)
    for index, key in enumerate(keys):
        value = document[key]
        comma = "," if index < len(keys) - 1 else ""
        if isinstance(value, list) and value:
            lines.append(f"  {encode(key)}: [")
            lines.append(",\n".join(f"    {encode(item)}" for item in value))
            lines.append(f"  ]{comma}")
        else:
            lines.append(f"  {encode(key)}: {encode(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"
