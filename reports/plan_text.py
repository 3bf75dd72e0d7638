"""The plan for people: a console timeline (`table`) and Markdown tables per phase.

Both walk the phases in time order and say, for each check, why it is needed and what
breaks without it; requirements no probe can test (wildcards, tags, undocumented names)
are listed under the phase that first needs them, with their note, because they still
have to be opened in the firewall.
"""

from __future__ import annotations

from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from reports._common import (
    DEFAULT_OPTIONS,
    Options,
    allowlist_only,
    phase_number,
    plural,
    target_of,
)
from reports._text import console, md_code, md_text, plain, rendered
from rules.model import PHASE_SYMPTOMS, PHASE_TITLES, Check, Phase, Requirement
from rules.plan import Plan


def _groups(checks: list[Check]) -> list[list[Check]]:
    """Checks of the same requirements together (one host's DNS → TCP → TLS → HTTP), each
    group where its first check falls in plan order, so the table reads host by host."""
    groups: dict[tuple[str, ...], list[Check]] = {}
    for check in checks:
        groups.setdefault(check.requirement_ids, []).append(check)
    return list(groups.values())


def _earlier_needs(plan: Plan, phase: Phase) -> list[str]:
    """Checks this phase needs that an earlier phase already needed."""
    return [cid for cid in plan.needed_by(phase) if plan.checks[cid].phase is not phase]


def _unprobed_by_phase(plan: Plan) -> dict[Phase, list[Requirement]]:
    by_phase: dict[Phase, list[Requirement]] = {}
    for req in allowlist_only(plan):
        first = min((p for p in req.phases if p in plan.phases), key=lambda p: p.rank)
        by_phase.setdefault(first, []).append(req)
    return by_phase


def _port(req: Requirement) -> str:
    port = "" if req.port is None else str(req.port)
    return f"{req.protocol.value} {port}".strip()


def _summary(plan: Plan, unprobed: int) -> str:
    return (
        f"{plural(len(plan.checks), 'check')} in {plural(len(plan.phases), 'phase')}; "
        f"{plural(unprobed, 'requirement')} only a firewall allowlist can express."
    )


# -- console ------------------------------------------------------------------------------


def plan_table(plan: Plan, options: Options = DEFAULT_OPTIONS) -> str:
    """The phase-by-phase timeline as console text (ANSI colour only with `options.color`)."""
    out, buffer = console(options)
    unprobed = _unprobed_by_phase(plan)
    summary = _summary(plan, len(allowlist_only(plan)))
    out.print(Text("aksflight plan: ", style="bold") + plain(summary))
    for phase in plan.phases:
        out.print()
        out.print(
            Rule(
                plain(f"{phase_number(phase)}. {PHASE_TITLES[phase]}"),
                style="cyan",
                align="left",
            )
        )
        out.print(Text("Without it: ", style="bold") + plain(PHASE_SYMPTOMS[phase]))
        checks = plan.checks_in(phase)
        if checks:
            out.print(_checks_table(checks))
        earlier = _earlier_needs(plan, phase)
        if earlier:
            targets = sorted({target_of(plan.checks[cid]) for cid in earlier})
            out.print(
                Text("Also needs, from earlier phases: ", style="dim") + plain(", ".join(targets))
            )
        if phase in unprobed:
            out.print(_allowlist_table(unprobed[phase]))
    return rendered(buffer)


def _checks_table(checks: list[Check]) -> Table:
    table = Table(expand=True, show_edge=False, header_style="bold", pad_edge=False)
    table.add_column("Check (kind:target:port)", ratio=4, overflow="fold")
    table.add_column("Kind", no_wrap=True)
    table.add_column("Why it is needed", ratio=3)
    table.add_column("What breaks without it", ratio=3)
    for index, group in enumerate(_groups(checks)):
        if index:
            table.add_section()
        for row, check in enumerate(group):
            first = row == 0
            why = plain(check.purpose) if first else Text("")
            if check.unprobeable_reason:
                skip = Text("not probed: ", style="yellow") + plain(check.unprobeable_reason)
                why = Text("\n").join([why, skip]) if first else skip
            table.add_row(
                plain(check.id),
                plain(check.kind.value),
                why,
                plain(check.breaks) if first else Text(""),
            )
    return table


def _allowlist_table(reqs: list[Requirement]) -> Padding:
    table = Table(
        title="Allowlist only (no probe can test these)",
        title_justify="left",
        title_style="bold yellow",
        expand=True,
        show_edge=False,
        header_style="bold",
        pad_edge=False,
    )
    table.add_column("Host or tag", ratio=2, overflow="fold")
    table.add_column("Port", no_wrap=True)
    table.add_column("Why it is needed", ratio=3)
    table.add_column("Note", ratio=3)
    for req in reqs:
        table.add_row(
            plain(_host_or_tag(req)),
            plain(_port(req)),
            plain(req.purpose),
            plain(req.note),
        )
    return Padding(table, (1, 0, 0, 0))


def _host_or_tag(req: Requirement) -> str:
    if req.service_tag:
        return f"service tag {req.service_tag}"
    if req.fqdn_tag:
        return f"FQDN tag {req.fqdn_tag}"
    return req.host


# -- Markdown -----------------------------------------------------------------------------


def plan_markdown(plan: Plan, options: Options = DEFAULT_OPTIONS) -> str:
    """One Markdown table of checks per phase, then that phase's allowlist-only needs."""
    del options  # Markdown ignores width and colour
    unprobed = _unprobed_by_phase(plan)
    lines = ["# aksflight plan", "", md_text(_summary(plan, len(allowlist_only(plan))))]
    for phase in plan.phases:
        lines += [
            "",
            f"## {phase_number(phase)}. {md_text(PHASE_TITLES[phase])}",
            "",
            f"Without it: {md_text(PHASE_SYMPTOMS[phase])}.",
        ]
        checks = plan.checks_in(phase)
        if checks:
            lines += [
                "",
                "| Checks (kind:target:port) | Why it is needed | What breaks without it |",
                "|---|---|---|",
            ]
            for group in _groups(checks):
                ids = "<br>".join(md_code(check.id) for check in group)
                why = md_text(group[0].purpose)
                reasons = sorted({c.unprobeable_reason for c in group if c.unprobeable_reason})
                why += "".join(f"<br>not probed: {md_text(reason)}" for reason in reasons)
                lines.append(f"| {ids} | {why} | {md_text(group[0].breaks)} |")
        earlier = _earlier_needs(plan, phase)
        if earlier:
            listed = ", ".join(md_code(cid, in_table=False) for cid in earlier)
            lines += ["", f"Also needs, from earlier phases: {listed}"]
        if phase in unprobed:
            lines += [
                "",
                "Allowlist only (no probe can test these):",
                "",
                "| Host or tag | Port | Why it is needed | Note |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| {md_code(_host_or_tag(req))} | {md_text(_port(req))} "
                f"| {md_text(req.purpose)} | {md_text(req.note)} |"
                for req in unprobed[phase]
            ]
    return "\n".join(lines) + "\n"
