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

from collections.abc import Iterator, Mapping
from importlib import import_module
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from reports._common import DEFAULT_OPTIONS, Options
from reports.errors import ReportInputError, ReportsError, UnknownFormatError
from rules.model import Evaluation
from rules.plan import Plan

if TYPE_CHECKING:
    from reports.plan_json import PLAN_SCHEMA, plan_document
    from reports.result_json import CHECK_SCHEMA, result_document

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


R = TypeVar("R")


class _Registry(Mapping[str, R], Generic[R]):
    """Format name → renderer, importing a renderer's module only when the renderer is
    fetched (membership and listing import nothing): `plan -o json` over 30,000 checks
    should not pay for rich and the HTML templates. An error while importing a renderer
    comes out as itself, never as an unknown format."""

    def __init__(self, paths: Mapping[str, str]) -> None:
        self._paths = dict(paths)  # name → "module:function"

    def __contains__(self, name: object) -> bool:
        return name in self._paths

    def __getitem__(self, name: str) -> R:
        module, _, function = self._paths[name].partition(":")
        renderer: R = getattr(import_module(module), function)
        return renderer

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


PLAN_FORMATS: Mapping[str, PlanRenderer] = _Registry(
    {
        "table": "reports.plan_text:plan_table",
        "json": "reports.plan_json:plan_json",
        "markdown": "reports.plan_text:plan_markdown",
        "mermaid": "reports.plan_graph:plan_mermaid",
        "dot": "reports.plan_graph:plan_dot",
    }
)

CHECK_FORMATS: Mapping[str, CheckRenderer] = _Registry(
    {
        "table": "reports.result_text:result_table",
        "json": "reports.result_json:result_json",
        "junit": "reports.result_junit:result_junit",
        "markdown": "reports.result_text:result_markdown",
        "html": "reports.result_html:result_html",
    }
)

_LAZY = {
    "PLAN_SCHEMA": "reports.plan_json",
    "plan_document": "reports.plan_json",
    "CHECK_SCHEMA": "reports.result_json",
    "result_document": "reports.result_json",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'reports' has no attribute {name!r}")


def render_plan(name: str, plan: Plan, options: Options = DEFAULT_OPTIONS) -> str:
    """The plan in format `name`; `UnknownFormatError` names the known formats."""
    if name not in PLAN_FORMATS:
        raise UnknownFormatError("plan", name, sorted(PLAN_FORMATS))
    return PLAN_FORMATS[name](plan, options)


def render_check(
    name: str, evaluation: Evaluation, plan: Plan, options: Options = DEFAULT_OPTIONS
) -> str:
    """The preflight result in format `name`; `UnknownFormatError` names the known formats."""
    if name not in CHECK_FORMATS:
        raise UnknownFormatError("check", name, sorted(CHECK_FORMATS))
    return CHECK_FORMATS[name](evaluation, plan, options)
