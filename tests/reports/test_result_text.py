"""`aksflight check -o markdown|table`: verdict first, failures with what to change."""

from __future__ import annotations

import re

from reports import CHECK_FORMATS, Options
from rules.model import Evaluation, Phase, PhaseVerdict, Status
from rules.plan import Plan

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_markdown_leads_with_the_verdict_and_first_failing_phase(
    small_plan: Plan, small_result: Evaluation
) -> None:
    text = CHECK_FORMATS["markdown"](small_result, small_plan)
    lines = text.splitlines()
    assert lines[0] == "## ❌ aksflight preflight: fail"
    assert lines[2] == (
        "First failing phase: **1. Router install (cluster create or attach)** "
        "— cluster create or attach hangs, then times out."
    )
    assert "6 checks (1 fail, 2 blocked, 1 warn, 1 skipped, 1 pass) in 3.0 s." in text


def test_markdown_phase_table_failures_and_collapsed_details(
    small_plan: Plan, small_result: Evaluation
) -> None:
    text = CHECK_FORMATS["markdown"](small_result, small_plan)
    assert (
        "| 1 | Router install (cluster create or attach) | ❌ fail | 1 fail, 2 blocked, 1 pass "
        "| `tcp:api.example.test:443` |" in text
    )
    assert "| 5 | Serving | ⛔ blocked | 1 warn, 1 skipped |" in text
    failures = text[text.index("### Failures") : text.index("### Warnings")]
    assert "- ❌ `tcp:api.example.test:443` (router-install): timeout: nope" in failures
    assert "  - **Fix:** allow TCP 443 to api.example.test" in failures
    assert "  - Blocks 2 other checks." in failures
    warnings = text[text.index("### Warnings") : text.index("<details>")]
    assert "`dns:db.example.test`" in warnings and "create the record" in warnings
    details = text[text.index("<details>") :]
    assert details.startswith("<details><summary>All 6 checks</summary>\n\n| Check |")
    assert details.rstrip().endswith("</details>")
    assert details.count("\n| `") == 6
    assert (
        "| `tls:api.example.test:443` | router-install | ⛔ blocked | not run: waits on " in details
    )


def test_markdown_for_a_clean_run_has_no_failure_sections(small_plan: Plan) -> None:
    clean = Evaluation(
        findings=(),
        phases=(PhaseVerdict(Phase.ROUTER_INSTALL, Status.PASS),),
        verdict=Status.PASS,
        first_failing_phase=None,
    )
    text = CHECK_FORMATS["markdown"](clean, small_plan)
    assert text.startswith("## ✅ aksflight preflight: pass\n\n0 checks (no checks) in 0.0 s.")
    assert "### Failures" not in text and "First failing phase" not in text


def test_table_puts_failures_first_with_remediation_and_counts(
    small_plan: Plan, small_result: Evaluation
) -> None:
    text = CHECK_FORMATS["table"](small_result, small_plan, Options(width=100))
    assert not ANSI.search(text)
    lines = text.splitlines()
    assert lines[0].startswith("aksflight preflight: FAIL — first failing phase: 1. Router install")
    assert "6 checks (1 fail, 2 blocked, 1 warn, 1 skipped, 1 pass) in 3.0 s" in lines[:4]
    phase_rows = [line for line in lines if re.match(r"^[15] │", line)]
    assert "fail" in phase_rows[0] and "blocked" in phase_rows[1]
    failures = text.index("Failures (1)")
    assert failures < text.index("Warnings (1)") < text.index("Skipped (1)")
    block = text[failures : text.index("Warnings (1)")]
    assert "tcp:api.example.test:443" in block
    assert "fix: allow TCP 443 to api.example.test" in block
    assert "blocks 2 other checks" in block
    assert max(len(line) for line in lines) <= 100


def test_table_colour_only_when_asked(small_plan: Plan, small_result: Evaluation) -> None:
    coloured = CHECK_FORMATS["table"](small_result, small_plan, Options(width=100, color=True))
    assert ANSI.search(coloured)
    plain = CHECK_FORMATS["table"](small_result, small_plan, Options(width=100))
    assert [line.rstrip() for line in ANSI.sub("", coloured).splitlines()] == plain.splitlines()
