"""The live display: drawn on a terminal, absent otherwise, failures shown as they come."""

from __future__ import annotations

import io

from rich.console import Console

from preflight.options import ProbeOptions
from preflight.progress import run_plan_with_progress
from preflight.runner import RunEvent
from rules.model import ProbeStatus
from rules.plan import build_plan
from tests.preflight.conftest import requirement, run
from tests.preflight.servers import silent_nameserver


def test_terminal_shows_phases_and_failures() -> None:
    plan = build_plan([requirement("a.example.com", 443), requirement("b.example.com", 443)])
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    seen: list[RunEvent] = []
    with silent_nameserver() as nameserver:
        options = ProbeOptions(nameservers=[nameserver], timeout=0.3)
        result = run(run_plan_with_progress(plan, options, console=console, on_event=seen.append))
    text = out.getvalue()
    assert result.observations["dns:a.example.com"].status is ProbeStatus.DNS_TIMEOUT
    assert "Router install (cluster create or attach)" in text
    assert "✗ dns:a.example.com: dns-timeout" in text
    assert "✗ dns:b.example.com: dns-timeout" in text
    assert "2 failed, 6 blocked" in text
    assert seen  # the caller's own handler still gets every event


def test_not_a_terminal_draws_nothing() -> None:
    plan = build_plan([requirement("a.example.com", 443)])
    out = io.StringIO()
    console = Console(file=out, force_terminal=False)
    with silent_nameserver() as nameserver:
        options = ProbeOptions(nameservers=[nameserver], timeout=0.2)
        result = run(run_plan_with_progress(plan, options, console=console))
    assert out.getvalue() == ""
    assert result.observations["dns:a.example.com"].status is ProbeStatus.DNS_TIMEOUT
