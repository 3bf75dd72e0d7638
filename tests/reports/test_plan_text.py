"""`aksflight plan -o table|markdown`: phases in order, why and what breaks, allowlist-only."""

from __future__ import annotations

import re

import pytest

from reports import PLAN_FORMATS, Options, ReportInputError
from rules.model import PHASE_TITLES
from rules.plan import Plan
from tests.reports.conftest import example_plan

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_table_walks_the_phases_in_order_with_checks_purposes_and_breaks() -> None:
    plan = example_plan()
    text = PLAN_FORMATS["table"](plan, Options(width=200))
    positions = [text.index(f"{n}. {PHASE_TITLES[p]}") for n, p in enumerate(plan.phases, 1)]
    assert positions == sorted(positions)
    install = text[positions[0] : positions[1]]
    assert "dns:mcr.microsoft.com" in install
    assert "Microsoft Container Registry" in install  # purpose
    assert "ImagePullBackOff" in install  # breaks
    # The wildcard has no check; it is listed as allowlist-only with its note.
    assert "*.data.mcr.microsoft.com" in install
    assert "only firewalls can express it" in install
    serving = text[positions[4] :]
    assert "tcp:features.postgres.database.azure.com:5432" in serving
    assert "dns:mcr.microsoft.com" not in serving


def test_table_respects_width_and_colour() -> None:
    plan = example_plan()
    plain_text = PLAN_FORMATS["table"](plan, Options(width=80))
    assert not ANSI.search(plain_text)
    assert max(len(line) for line in plain_text.splitlines()) <= 80
    coloured = PLAN_FORMATS["table"](plan, Options(width=80, color=True))
    assert ANSI.search(coloured)
    uncoloured = [line.rstrip() for line in ANSI.sub("", coloured).splitlines()]
    assert uncoloured == plain_text.splitlines()


def test_table_says_why_a_check_is_not_probed() -> None:
    text = PLAN_FORMATS["table"](example_plan(), Options(width=200))
    line = next(line for line in text.splitlines() if "peer:router" in line)
    assert "not probed" in text[text.index(line) :].split("\n\n")[0]


@pytest.mark.parametrize("width", [10, 5000])
def test_width_out_of_range_is_a_one_line_error(width: int) -> None:
    with pytest.raises(ReportInputError, match=r"^--width: .* out of range"):
        Options(width=width)


def _table_rows(markdown: str) -> list[list[str]]:
    """Cells of every table row, split on pipes that are not escaped."""
    rows = []
    for line in markdown.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            rows.append([cell.strip() for cell in cells])
    return rows


def test_markdown_has_one_table_per_phase_and_rows_of_the_right_width(small_plan: Plan) -> None:
    text = PLAN_FORMATS["markdown"](small_plan)
    assert text.count("\n## ") == len(small_plan.phases)
    assert "## 1. Router install (cluster create or attach)" in text
    assert "## 5. Serving" in text
    rows = _table_rows(text)
    headers = [row for row in rows if row[0].startswith("Checks")]
    assert len(headers) == 2
    for row in rows:
        assert len(row) in (3, 4)  # checks tables, allowlist-only table
    api = next(row for row in rows if "`dns:api.example.test`" in row[0])
    assert api[0].split("<br>") == [
        "`dns:api.example.test`",
        "`tcp:api.example.test:443`",
        "`tls:api.example.test:443`",
        "`http:api.example.test:443`",
    ]
    assert api[1:] == ["the API", "install hangs"]
    wildcard = next(row for row in rows if "*.data.example.test" in row[0])
    assert wildcard == ["`*.data.example.test`", "https 443", "layers", "a wildcard"]
    # serving also relies on the API host, first needed in router-install
    serving = text[text.index("## 5. Serving") :]
    assert "Also needs, from earlier phases: `dns:api.example.test`" in serving
