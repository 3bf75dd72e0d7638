"""The preflight timeline as an SVG picture: one lane per phase, one bar per check.

A bar runs from the check's start to its end. Start times come from the probe's evidence
(`started_ms`) and its `duration_ms`; a check that did not run (blocked, skipped) is drawn
where it would have started, right after its prerequisites ended. When no probe recorded a
start time, the bars are laid out by plan generation instead (step 1, 2, …), which still
shows what waited on what. Bars that overlap in time stack in rows within their lane.
Built as an ElementTree so every label is escaped by the serialiser.
"""

from __future__ import annotations

import heapq
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from reports._common import (
    blocked_message,
    duration_ms,
    node_generations,
    phase_number,
    printable,
    started_ms,
)
from rules.model import PHASE_ORDER, PHASE_TITLES, Evaluation, Finding, Phase, Status
from rules.plan import Plan, gate_id

WIDTH = 1000
LABEL_W = 210
RIGHT_PAD = 24
AXIS_H = 28
LANE_PAD = 8
MAX_LANE_H = 420
MIN_BAR_PX = 4.0
NOT_RUN_PX = 12.0
VERDICT_TEXT = {
    Status.PASS: "#1f7a44",
    Status.WARN: "#9a6b00",
    Status.FAIL: "#c0392b",
    Status.BLOCKED: "#8e44ad",
    Status.SKIPPED: "#666",
}
FILL = {
    Status.PASS: "#2e9e5b",
    Status.WARN: "#e0a100",
    Status.FAIL: "#d64541",
    Status.BLOCKED: "url(#hatch)",
    Status.SKIPPED: "#c9ccd1",
}


@dataclass(frozen=True, slots=True)
class Bar:
    finding: Finding
    phase: Phase
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Layout:
    """Where bars and gates fall on the x axis, in ms (timed) or steps (by generation)."""

    bars: list[Bar]
    gates: dict[Phase, float]
    span: float
    timed: bool


def layout(evaluation: Evaluation, plan: Plan) -> Layout:
    """Bar positions: measured when any probe gave a start time, else by plan generation."""
    findings = {f.check.id: f for f in evaluation.findings}
    if any(started_ms(f) is not None for f in findings.values()):
        return _timed(findings, plan, evaluation.duration_s * 1000)
    return _by_generation(findings, plan)


def _timed(findings: dict[str, Finding], plan: Plan, total_ms: float) -> Layout:
    ends: dict[str, float] = {}
    bars = []
    for node in plan.order():
        ready = max((ends.get(p, 0.0) for p in plan.prerequisites(node)), default=0.0)
        finding = findings.get(node)
        if finding is None:
            ends[node] = ready
            continue
        start = started_ms(finding)
        start = ready if start is None else start
        end = start + (duration_ms(finding) or 0.0)
        ends[node] = end
        bars.append(Bar(finding, finding.check.phase, start, end))
    bars += _unplanned(findings, plan, start=0.0, end=0.0)
    gates = {phase: ends.get(gate_id(phase), 0.0) for phase in plan.phases}
    span = max([total_ms, *ends.values(), *(b.end for b in bars)], default=0.0)
    return Layout(bars, gates, span or 1.0, timed=True)


def _by_generation(findings: dict[str, Finding], plan: Plan) -> Layout:
    steps = node_generations(plan)
    bars = [
        Bar(finding, finding.check.phase, steps[node], steps[node] + 0.9)
        for node, finding in findings.items()
        if node in steps
    ]
    last = max(steps.values(), default=0) + 1
    bars += _unplanned(findings, plan, start=last, end=last + 0.9)
    gates = {phase: steps.get(gate_id(phase), 0) + 0.45 for phase in plan.phases}
    span = max((b.end for b in bars), default=1.0)
    return Layout(bars, gates, max(span, float(last)), timed=False)


def _unplanned(findings: dict[str, Finding], plan: Plan, start: float, end: float) -> list[Bar]:
    """Findings of checks the plan does not hold (drawn, so nothing silently disappears)."""
    return [Bar(f, f.check.phase, start, end) for node, f in findings.items() if node not in plan]


def _rows(bars: list[Bar], gap: float) -> list[tuple[Bar, int]]:
    """Interval packing: each bar goes in the row that fell free earliest, if it is free by
    the bar's start, else in a new row (a heap keeps this n log n for large plans)."""
    free_at: list[tuple[float, int]] = []  # (end of the row's last bar + gap, row)
    rows = 0
    placed = []
    for bar in sorted(bars, key=lambda b: (b.start, b.end, b.finding.check.id)):
        if free_at and free_at[0][0] <= bar.start:
            _, row = heapq.heappop(free_at)
        else:
            row, rows = rows, rows + 1
        heapq.heappush(free_at, (bar.end + gap, row))
        placed.append((bar, row))
    return placed


def _ticks(span: float, timed: bool) -> list[tuple[float, str]]:
    if not timed:
        every = max(1, math.ceil(span / 20))
        return [(float(s), f"step {s + 1}") for s in range(0, math.ceil(span), every)]
    raw = span / 8
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    ticks = []
    value = 0.0
    while value <= span + 1e-9:
        label = f"{value / 1000:g} s" if span >= 2000 else f"{value:g} ms"
        ticks.append((value, label))
        value += step
    return ticks


def timeline_svg(evaluation: Evaluation, plan: Plan, plot: Layout | None = None) -> ET.Element:
    """The timeline picture as an `<svg>` element (no namespace: it is inlined in HTML)."""
    plot = plot or layout(evaluation, plan)
    scale = (WIDTH - LABEL_W - RIGHT_PAD) / plot.span
    min_width_units = NOT_RUN_PX / scale
    verdicts = {verdict.phase: verdict.status for verdict in evaluation.phases}
    lanes: dict[Phase, list[Bar]] = {phase: [] for phase in plan.phases}
    for bar in plot.bars:
        lanes.setdefault(bar.phase, []).append(bar)

    svg = ET.Element("svg", viewBox="", role="img", width="100%")
    svg.set("aria-label", "Preflight timeline: one lane per phase, one bar per check")
    svg.append(_defs())
    y = float(AXIS_H)
    lane_tops: dict[Phase, tuple[float, float]] = {}
    body = ET.Element("g")
    for index, phase in enumerate(sorted(lanes, key=PHASE_ORDER.index)):
        placed = _rows(lanes[phase], gap=min_width_units if plot.timed else 0.0)
        rows = max((row for _, row in placed), default=0) + 1
        # Rows 17 px apart until the lane would pass MAX_LANE_H; then closer (large plans).
        pitch = min(17.0, (MAX_LANE_H - 2 * LANE_PAD) / rows)
        bar_h = pitch - 3 if pitch >= 6 else pitch * 0.8
        lane_h = max(58.0, rows * pitch + 2 * LANE_PAD)
        lane_tops[phase] = (y, lane_h)
        _lane(body, phase, index=index, verdict=verdicts.get(phase), y=y, height=lane_h)
        for bar, row in placed:
            top = y + LANE_PAD + row * pitch
            body.append(_bar(bar, top, bar_h, scale, plot.timed))
        y += lane_h
    height = y + 6
    svg.append(_axis(plot, scale, height))
    svg.append(body)
    svg.append(_gates(plot, lane_tops, scale))
    svg.set("viewBox", f"0 0 {WIDTH} {height:.0f}")
    return svg


def _defs() -> ET.Element:
    defs = ET.Element("defs")
    pattern = ET.SubElement(
        defs,
        "pattern",
        id="hatch",
        width="6",
        height="6",
        patternUnits="userSpaceOnUse",
        patternTransform="rotate(45)",
    )
    ET.SubElement(pattern, "rect", width="6", height="6", fill="#eadcf0")
    ET.SubElement(pattern, "line", x1="0", y1="0", x2="0", y2="6", stroke="#8e44ad")
    pattern[-1].set("stroke-width", "3")
    return defs


def _wrap(text: str, width: int, lines: int) -> list[str]:
    """`text` in at most `lines` lines of about `width` characters (the last one cut)."""
    out: list[str] = []
    for word in text.split():
        if out and len(out[-1]) + 1 + len(word) <= width:
            out[-1] += f" {word}"
        else:
            out.append(word)
    if len(out) > lines:
        out = [*out[: lines - 1], " ".join(out[lines - 1 :])]
    return [line if len(line) <= width else line[: width - 1] + "…" for line in out]


def _lane(
    parent: ET.Element, phase: Phase, *, index: int, verdict: Status | None, y: float, height: float
) -> None:
    fill = "#f6f7f9" if index % 2 == 0 else "#ffffff"
    ET.SubElement(
        parent, "rect", x="0", y=f"{y:.1f}", width=str(WIDTH), height=f"{height:.1f}", fill=fill
    )
    title = f"{phase_number(phase)}. {PHASE_TITLES[phase]}"
    label = ET.SubElement(parent, "text", x="8", y=f"{y + 18:.1f}", fill="#222")
    label.set("font-size", "12")
    lines = _wrap(printable(title), 30, 2)
    for number, line in enumerate(lines):
        span = ET.SubElement(label, "tspan", x="8", dy="0" if number == 0 else "14")
        span.text = line
    if verdict is not None:
        mark = ET.SubElement(parent, "text", x="8", y=f"{y + 18 + 14 * len(lines):.1f}")
        mark.set("font-size", "11")
        mark.set("font-weight", "bold")
        mark.set("fill", VERDICT_TEXT[verdict])
        mark.text = verdict.value


def _bar(bar: Bar, top: float, height: float, scale: float, timed: bool) -> ET.Element:
    finding = bar.finding
    x = LABEL_W + bar.start * scale
    # A check that never ran has no length; draw it wide enough to see its hatching.
    least = MIN_BAR_PX if finding.observation is not None else NOT_RUN_PX
    width = max(least, (bar.end - bar.start) * scale)
    group = ET.Element("g")
    group.set("class", f"bar {finding.status.value}")
    title = ET.SubElement(group, "title")
    title.text = _tooltip(finding, bar, timed)
    rect = ET.SubElement(
        group,
        "rect",
        x=f"{x:.1f}",
        y=f"{top:.1f}",
        width=f"{width:.1f}",
        height=f"{height:.1f}",
        rx="2",
        fill=FILL[finding.status],
    )
    if finding.status in (Status.BLOCKED, Status.SKIPPED):
        rect.set("stroke", "#8e44ad" if finding.status is Status.BLOCKED else "#888")
        rect.set("stroke-dasharray", "3 2")
    text = printable(finding.check.id)
    if height >= 10 and width >= 6.2 * len(text) + 8:
        label = ET.SubElement(group, "text", x=f"{x + 4:.1f}", y=f"{top + height - 3:.1f}")
        label.set("font-size", "10")
        label.set("fill", "#111" if finding.status in (Status.WARN, Status.SKIPPED) else "#fff")
        label.text = text
    return group


def _tooltip(finding: Finding, bar: Bar, timed: bool) -> str:
    reason = blocked_message(finding) if finding.status is Status.BLOCKED else finding.reason
    where = (
        f"{bar.start:.0f}–{bar.end:.0f} ms" if timed else f"step {int(bar.start) + 1} of the plan"
    )
    return printable(f"{finding.check.id} — {finding.status.value} — {where}\n{reason}")


def _axis(plot: Layout, scale: float, height: float) -> ET.Element:
    group = ET.Element("g")
    group.set("class", "axis")
    for value, label in _ticks(plot.span, plot.timed):
        x = LABEL_W + value * scale
        ET.SubElement(
            group,
            "line",
            x1=f"{x:.1f}",
            y1=str(AXIS_H - 6),
            x2=f"{x:.1f}",
            y2=f"{height:.0f}",
            stroke="#e1e4e8",
        )
        text = ET.SubElement(group, "text", x=f"{x + 2:.1f}", y=str(AXIS_H - 10), fill="#555")
        text.set("font-size", "10")
        text.text = label
    return group


def _gates(plot: Layout, lanes: dict[Phase, tuple[float, float]], scale: float) -> ET.Element:
    """A dashed line where each phase's gate opened: everything it needs had ended."""
    group = ET.Element("g")
    group.set("class", "gates")
    for phase, at in plot.gates.items():
        if phase not in lanes:
            continue
        top, height = lanes[phase]
        x = LABEL_W + at * scale
        line = ET.SubElement(
            group,
            "line",
            x1=f"{x:.1f}",
            y1=f"{top:.1f}",
            x2=f"{x:.1f}",
            y2=f"{top + height:.1f}",
            stroke="#4a63b0",
        )
        line.set("stroke-width", "2")
        line.set("stroke-dasharray", "4 3")
        title = ET.SubElement(line, "title")
        title.text = f"{gate_id(phase)}: everything the phase needs has ended"
    return group
