"""Markup, quotes, newlines and terminal escapes in purposes, reasons and ids, in every format.

Each format must show such text as text: never as HTML, Markdown, rich markup, a broken
table row, an unterminated string, or an escape sequence a terminal would act on.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from reports import CHECK_FORMATS, PLAN_FORMATS, Options
from reports._common import printable
from tests.reports.conftest import HOSTILE, hostile_evaluation, hostile_plan
from tests.reports.test_result_html import check_html

PLAN = hostile_plan()
RESULT = hostile_evaluation(PLAN)


def _outputs() -> dict[str, str]:
    wide = Options(width=160)
    out = {f"plan-{name}": render(PLAN, wide) for name, render in PLAN_FORMATS.items()}
    out |= {f"check-{name}": render(RESULT, PLAN, wide) for name, render in CHECK_FORMATS.items()}
    return out


OUTPUTS = _outputs()


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_no_raw_terminal_escape_or_nul_in_any_format(name: str) -> None:
    assert "\x1b" not in OUTPUTS[name]


@pytest.mark.parametrize("name", ["plan-json", "check-json"])
def test_json_keeps_the_text_exactly(name: str) -> None:
    document = json.loads(OUTPUTS[name])
    strings = json.dumps(document)
    assert json.dumps(HOSTILE) in strings  # the data, escaped by JSON and only by JSON


@pytest.mark.parametrize(
    "name", ["plan-markdown", "check-markdown", "check-html", "plan-mermaid", "check-junit"]
)
def test_markup_never_reaches_the_page(name: str) -> None:
    text = OUTPUTS[name]
    assert "<script>" not in text
    assert "<b>" not in text


@pytest.mark.parametrize("name", ["plan-markdown", "check-markdown"])
def test_markdown_tables_keep_their_shape(name: str) -> None:
    text = OUTPUTS[name]
    assert "&lt;script&gt;" in text
    in_table = False
    width = 0
    for line in text.splitlines():
        if line.startswith("|"):
            cells = len(re.split(r"(?<!\\)\|", line)) - 2
            if not in_table:
                width = cells
            assert line.endswith("|") and cells == width, line
            in_table = True
        else:
            in_table = False
    # an id holding a backtick is fenced with two, so its code span cannot end early
    assert "``tcp:evil" in text


@pytest.mark.parametrize("name", ["plan-table", "check-table"])
def test_console_shows_markup_literally(name: str) -> None:
    text = OUTPUTS[name]
    flat = " ".join(text.split())
    assert "[link](x)" in flat  # rich markup not interpreted
    assert "\\x1b[31m" in flat  # the escape shown, not sent


def test_html_shows_the_text_and_runs_nothing() -> None:
    checker = check_html(OUTPUTS["check-html"])
    assert "script" not in checker.tags
    text = "".join(checker.text)
    assert printable("<script>alert(\"x\")</script> | a 'quote'") in text
    svg = OUTPUTS["check-html"]
    svg = svg[svg.index("<svg") : svg.index("</svg>") + 6]
    titles = [t.text or "" for t in ET.fromstring(svg).iter("title")]
    assert any(t.startswith("tcp:<acr>'\"x.azurecr.io:443 — fail") for t in titles)
