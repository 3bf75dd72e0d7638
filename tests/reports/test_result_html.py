"""`aksflight check -o html`: one well-formed, self-contained file with the timeline picture."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from html.parser import HTMLParser

from reports import CHECK_FORMATS
from rules.model import Evaluation
from rules.plan import Plan
from tests.reports.conftest import small_evaluation

VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


class _Checker(HTMLParser):
    """Fails on any end tag that does not close the innermost open element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_html(text: str) -> _Checker:
    assert text.startswith('<!DOCTYPE html>\n<html lang="en">')
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert checker.stack == [], checker.stack
    return checker


def _svg(text: str) -> ET.Element:
    return ET.fromstring(text[text.index("<svg") : text.index("</svg>") + len("</svg>")])


def _bars(svg: ET.Element) -> dict[str, dict[str, str]]:
    """Each bar's rect attributes, keyed by the check id its tooltip names."""
    bars = {}
    for group in svg.iter("g"):
        if (group.get("class") or "").startswith("bar "):
            title = group.find("title")
            rect = group.find("rect")
            assert title is not None and rect is not None and title.text
            bars[title.text.split(" — ")[0]] = dict(rect.attrib, status=group.get("class", ""))
    return bars


def test_page_is_well_formed_and_self_contained(small_plan: Plan, small_result: Evaluation) -> None:
    text = CHECK_FORMATS["html"](small_result, small_plan)
    checker = check_html(text)
    assert checker.tags.count("svg") == 1
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(checker.tags)
    assert not [name for name, _ in checker.attributes if name in ("src", "href")]
    assert not re.search(r"(?i)https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import", text)
    assert [v for n, v in checker.attributes if "url(" in v] == ["url(#hatch)"] * 2
    assert '<meta charset="utf-8">' in text


def test_timeline_has_a_lane_per_phase_and_a_bar_per_check_coloured_by_status(
    small_plan: Plan, small_result: Evaluation
) -> None:
    text = CHECK_FORMATS["html"](small_result, small_plan)
    svg = _svg(text)
    lanes = [t for t in svg.iter("text") if t.get("font-size") == "12"]
    assert [" ".join(t.itertext()) for t in lanes] == [
        "1. Router install (cluster create or attach)",
        "5. Serving",
    ]
    bars = _bars(svg)
    assert sorted(bars) == sorted(f.check.id for f in small_result.findings)
    assert bars["dns:api.example.test"]["fill"] == "#2e9e5b"
    assert bars["tcp:api.example.test:443"]["fill"] == "#d64541"
    assert bars["dns:db.example.test"]["fill"] == "#e0a100"
    assert bars["tls:api.example.test:443"]["fill"] == "url(#hatch)"  # blocked: hatched
    assert bars["tcp:db.example.test:5432"]["fill"] == "#c9ccd1"  # skipped
    # Timed: bars start where the probes said and are as long as they took.
    x = {cid: float(bar["x"]) for cid, bar in bars.items()}
    width = {cid: float(bar["width"]) for cid, bar in bars.items()}
    assert x["dns:api.example.test"] < x["tcp:api.example.test:443"] < x["dns:db.example.test"]
    assert width["tcp:api.example.test:443"] > 100 * width["dns:api.example.test"] / 12.5 * 0.9
    # A blocked check sits where it would have started: when its blocker ended.
    ended = x["tcp:api.example.test:443"] + width["tcp:api.example.test:443"]
    assert abs(x["tls:api.example.test:443"] - ended) < 0.2
    assert "Each bar runs from a probe's start to its end" in text


def test_without_start_times_the_bars_follow_the_plan_steps(small_plan: Plan) -> None:
    evaluation = small_evaluation(small_plan, timed=False)
    text = CHECK_FORMATS["html"](evaluation, small_plan)
    bars = _bars(_svg(text))
    x = {cid: float(bar["x"]) for cid, bar in bars.items()}
    steps = [cid for step in small_plan.timeline() for cid in step if cid in x]
    assert [x[cid] for cid in steps] == sorted(x[cid] for cid in steps)
    assert len(set(x.values())) == len(x)  # one step each in this plan
    assert "laid out by plan step" in text


def test_findings_table_and_what_to_fix(small_plan: Plan, small_result: Evaluation) -> None:
    text = CHECK_FORMATS["html"](small_result, small_plan)
    checker = check_html(text)
    words = " ".join(checker.text)
    assert "aksflight preflight: FAIL" in words
    assert "Blocks 2 other checks: tls:api.example.test:443, http:api.example.test:443." in words
    assert "allow TCP 443 to api.example.test" in words
    fix = text.index("What to fix")
    assert text.index("tcp:api.example.test:443", fix) < text.index("dns:db.example.test", fix)
    # a status chip per finding, per phase and per problem to fix
    chips = len(small_result.findings) + len(small_result.phases) + 2
    assert text.count('<span class="status ') == chips
    # evidence folded under each finding that has some
    assert text.count('<summary class="muted">evidence</summary>') == 3
    assert '<pre>{\n  "addresses": [\n    "203.0.113.7"\n  ],' in text


def test_a_check_the_plan_does_not_know_is_still_drawn(small_plan: Plan) -> None:
    evaluation = small_evaluation(small_plan)
    stray = replace(evaluation.findings[0], check=replace(evaluation.findings[0].check, id="dns:x"))
    evaluation = replace(evaluation, findings=(*evaluation.findings, stray))
    bars = _bars(_svg(CHECK_FORMATS["html"](evaluation, small_plan)))
    assert "dns:x" in bars
