"""Rendering plans and preflight results, for people and for CI.

The CLI maps `-o NAME` through two registries:

    PLAN_FORMATS[name](plan, options)                 `aksflight plan -o ...`
    CHECK_FORMATS[name](evaluation, plan, options)    `aksflight check -o ...`

`options` (width in columns, colour) is optional and only the console `table` formats use
it. Every renderer returns the whole output as one `str`, or raises before writing
anything. Formats are described in docs/output-formats.md. Exceptions:

    ReportsError
    ├── UnknownFormatError   an output format nobody registered
    └── ReportInputError     an option a renderer cannot use (e.g. a width)
"""

from __future__ import annotations

from typing import Protocol

from reports._common import DEFAULT_OPTIONS, Options
from reports.errors import ReportInputError, ReportsError, UnknownFormatError
from reports.plan_graph import plan_dot, plan_mermaid
from reports.plan_json import PLAN_SCHEMA, plan_document, plan_json
from reports.plan_text import plan_markdown, plan_table
from reports.result_html import result_html
from reports.result_json import CHECK_SCHEMA, result_document, result_json
from reports.result_junit import result_junit
from reports.result_text import result_markdown, result_table
from rules.model import Evaluation
from rules.plan import Plan

__all__ = [
    "CHECK_FORMATS",
    "CHECK_SCHEMA",
    "PLAN_FORMATS",
    "PLAN_SCHEMA",
    "CheckRenderer",
    "Options",
    "PlanRenderer",
    "ReportInputError",
    "ReportsError",
    "UnknownFormatError",
    "plan_document",
    "render_check",
    "render_plan",
    "result_document",
]


class PlanRenderer(Protocol):
    def __call__(self, plan: Plan, options: Options = ..., /) -> str: ...


class CheckRenderer(Protocol):
    def __call__(self, evaluation: Evaluation, plan: Plan, options: Options = ..., /) -> str: ...


PLAN_FORMATS: dict[str, PlanRenderer] = {
    "table": plan_table,
    "json": plan_json,
    "markdown": plan_markdown,
    "mermaid": plan_mermaid,
    "dot": plan_dot,
}

CHECK_FORMATS: dict[str, CheckRenderer] = {
    "table": result_table,
    "json": result_json,
    "junit": result_junit,
    "markdown": result_markdown,
    "html": result_html,
}


def render_plan(name: str, plan: Plan, options: Options = DEFAULT_OPTIONS) -> str:
    """The plan in format `name`; `UnknownFormatError` names the known formats."""
    render = PLAN_FORMATS.get(name)
    if render is None:
        raise UnknownFormatError("plan", name, sorted(PLAN_FORMATS))
    return render(plan, options)


def render_check(
    name: str, evaluation: Evaluation, plan: Plan, options: Options = DEFAULT_OPTIONS
) -> str:
    """The preflight result in format `name`; `UnknownFormatError` names the known formats."""
    render = CHECK_FORMATS.get(name)
    if render is None:
        raise UnknownFormatError("check", name, sorted(CHECK_FORMATS))
    return render(evaluation, plan, options)
