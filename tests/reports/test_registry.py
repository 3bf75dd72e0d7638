"""The registries the CLI maps `-o` through, and their one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import reports
from reports import (
    CHECK_FORMATS,
    PLAN_FORMATS,
    ReportsError,
    UnknownFormatError,
    _Registry,
    render_check,
    render_plan,
)
from rules.model import Evaluation
from rules.plan import Plan


def test_the_formats_the_cli_offers() -> None:
    assert sorted(PLAN_FORMATS) == ["dot", "json", "markdown", "mermaid", "table"]
    assert sorted(CHECK_FORMATS) == ["html", "json", "junit", "markdown", "table"]


def test_render_by_name_is_the_registered_renderer(
    small_plan: Plan, small_result: Evaluation
) -> None:
    assert render_plan("mermaid", small_plan) == PLAN_FORMATS["mermaid"](small_plan)
    assert render_check("junit", small_result, small_plan) == CHECK_FORMATS["junit"](
        small_result, small_plan
    )


def test_unknown_format_is_a_one_line_error_naming_the_known_ones(
    small_plan: Plan, small_result: Evaluation
) -> None:
    with pytest.raises(UnknownFormatError) as caught:
        render_plan("yaml", small_plan)
    assert str(caught.value) == (
        "-o: unknown plan format 'yaml' (known: dot, json, markdown, mermaid, table)"
    )
    with pytest.raises(ReportsError, match=r"^-o: unknown check format 'html5' \(known: html,"):
        render_check("html5", small_result, small_plan)


def test_every_public_name_exists() -> None:
    for name in reports.__all__:
        assert hasattr(reports, name), name


def test_membership_imports_nothing_and_an_import_error_is_not_an_unknown_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_renderer.py").write_text("import os\nos.environ['AKSFLIGHT_NO_SUCH']\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = _Registry({"broken": "broken_renderer:render"})
    assert "broken" in registry
    assert "nope" not in registry
    assert list(registry) == ["broken"]
    assert "broken_renderer" not in sys.modules
    with pytest.raises(KeyError, match="AKSFLIGHT_NO_SUCH"):
        registry["broken"]
