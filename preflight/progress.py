"""A live view of a run for people at a terminal: checks done per phase, the checks in
flight, and each failure as it happens. Off when the output is not a terminal, so logs
and CI output stay plain."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.text import Text

from preflight.options import ProbeOptions
from preflight.runner import EventKind, OnEvent, RunEvent, RunResult, run_plan
from rules.model import PHASE_TITLES, Phase
from rules.plan import NodeState, Plan

_SHOWN_IN_FLIGHT = 4


class RunView:
    """The state the live display draws; fed with `RunEvent`s."""

    def __init__(self, plan: Plan, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description:<42}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[trouble]}"),
            console=console,
        )
        totals = Counter(check.phase for check in plan.checks.values())
        self.tasks: dict[Phase, TaskID] = {
            phase: self.progress.add_task(PHASE_TITLES[phase], total=totals[phase], trouble="")
            for phase in plan.phases
        }
        self.trouble: dict[Phase, Counter[str]] = {phase: Counter() for phase in plan.phases}
        self.in_flight: dict[str, None] = {}

    def update(self, event: RunEvent) -> None:
        if event.check is None:
            return
        if event.kind is EventKind.STARTED:
            self.in_flight[event.node_id] = None
            return
        self.in_flight.pop(event.node_id, None)
        phase = event.check.phase
        result = event.result
        if result is not None and result.state in (NodeState.FAILED, NodeState.BLOCKED):
            self.trouble[phase][result.state.value] += 1
        if result is not None and result.state is NodeState.FAILED and event.observation:
            obs = event.observation
            detail = f" ({obs.detail})" if obs.detail else ""
            line = Text.assemble(
                ("✗ ", "bold red"), f"{event.node_id}: ", (obs.status.value, "red")
            )
            line.append(detail, style="dim")
            self.console.print(line)
        counts = self.trouble[phase]
        trouble = ", ".join(f"{counts[k]} {k}" for k in ("failed", "blocked") if counts[k])
        style = "red" if counts["failed"] else "yellow"
        self.progress.update(
            self.tasks[phase], advance=1, trouble=f"[{style}]{trouble}[/]" if trouble else ""
        )

    def __rich__(self) -> RenderableType:
        names = list(self.in_flight)
        shown = ", ".join(names[:_SHOWN_IN_FLIGHT])
        more = f" and {len(names) - _SHOWN_IN_FLIGHT} more" if len(names) > _SHOWN_IN_FLIGHT else ""
        current = Text(f"running: {shown}{more}" if names else "", style="dim")
        return Group(self.progress, current)


def _chain(handlers: Iterable[OnEvent | None]) -> OnEvent:
    active = [h for h in handlers if h is not None]

    def handle(event: RunEvent) -> None:
        for handler in active:
            handler(event)

    return handle


async def run_plan_with_progress(
    plan: Plan,
    options: ProbeOptions,
    *,
    console: Console | None = None,
    on_event: OnEvent | None = None,
    enabled: bool | None = None,
) -> RunResult:
    """`run_plan` with a live display on `console` (default: stderr). `enabled=None`
    shows it only when the console is a terminal."""
    console = console or Console(stderr=True)
    if not (console.is_terminal if enabled is None else enabled):
        return await run_plan(plan, options, on_event=on_event)
    view = RunView(plan, console)
    with Live(view, console=console, refresh_per_second=8, transient=False):
        return await run_plan(plan, options, on_event=_chain([view.update, on_event]))
