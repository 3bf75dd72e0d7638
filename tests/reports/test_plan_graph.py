"""`aksflight plan -o mermaid|dot`: valid for any check id, one cluster per phase, gates drawn."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reports import PLAN_FORMATS
from reports._common import one_line
from reports.plan_graph import dot_quote, mermaid_id, mermaid_label
from rules.plan import Plan
from tests.reports.conftest import example_plan, hostile_plan

PLANS = {"example": example_plan, "hostile": hostile_plan}

NODE = re.compile(r'^    (n_\w+)(\["(.*)"\]|\{\{"(.*)"\}\})$')
EDGE = re.compile(r"^  (n_\w+) --> (n_\w+)$")
SUBGRAPH = re.compile(r'^  subgraph (n_\w+)\["(.*)"\]$')


def _decode_mermaid(label: str) -> str:
    return re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), label)


def _parse_mermaid(text: str) -> tuple[dict[str, str], list[tuple[str, str]], list[str]]:
    """Nodes (id → decoded label), edges and subgraph titles; fails on any unknown line."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    nodes: dict[str, str] = {}
    edges = []
    boxes = []
    depth = 0
    for line in lines[1:]:
        if match := SUBGRAPH.match(line):
            depth += 1
            boxes.append(_decode_mermaid(match.group(2)))
        elif line == "  end":
            depth -= 1
        elif line == "    direction TB":
            assert depth == 1
        elif match := NODE.match(line):
            assert depth == 1, line
            assert match.group(1) not in nodes, "a node declared twice"
            label = match.group(3) if match.group(3) is not None else match.group(4)
            assert '"' not in label
            nodes[match.group(1)] = _decode_mermaid(label)
        elif match := EDGE.match(line):
            edges.append((match.group(1), match.group(2)))
        elif line.startswith(("  classDef ", "  class ")):
            continue
        else:
            pytest.fail(f"unexpected mermaid line: {line!r}")
    assert depth == 0
    return nodes, edges, boxes


@pytest.mark.parametrize("name", sorted(PLANS))
def test_mermaid_declares_every_node_once_with_its_real_id(name: str) -> None:
    plan: Plan = PLANS[name]()
    nodes, edges, boxes = _parse_mermaid(PLAN_FORMATS["mermaid"](plan))
    assert sorted(nodes.values()) == sorted(plan.graph.nodes)
    by_label = {label: node for node, label in nodes.items()}
    assert sorted(edges) == sorted((by_label[a], by_label[b]) for a, b in plan.graph.edges)
    assert len(boxes) == len(plan.phases)
    # gates are hexagons
    text = PLAN_FORMATS["mermaid"](plan)
    for phase in plan.phases:
        assert f'{mermaid_id(f"phase:{phase.value}")}{{{{"phase:{phase.value}"}}}}' in text


@given(st.text())
def test_mermaid_ids_and_labels_are_safe_for_any_text(text: str) -> None:
    assert re.fullmatch(r"n_\w*_[0-9a-f]{8}", mermaid_id(text), re.ASCII)
    label = mermaid_label(text)
    assert re.fullmatch(r'"[A-Za-z0-9 .:_/*,+=@()#;-]*"', label)
    assert _decode_mermaid(label[1:-1]) == one_line(text)


def test_mermaid_ids_that_clean_up_alike_do_not_collide() -> None:
    assert mermaid_id("dns:a.b") != mermaid_id("dns:a_b")


@given(st.text())
def test_dot_quote_round_trips(text: str) -> None:
    quoted = dot_quote(text)
    assert quoted.startswith('"') and quoted.endswith('"')
    inner = quoted[1:-1]
    assert re.fullmatch(r'(?:[^"\\]|\\["\\])*', inner)
    assert re.sub(r"\\([\"\\])", r"\1", inner) == one_line(text)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
@pytest.mark.parametrize("name", sorted(PLANS))
def test_graphviz_renders_every_node_and_a_cluster_per_phase(name: str, tmp_path: Path) -> None:
    plan: Plan = PLANS[name]()
    source = tmp_path / "plan.dot"
    source.write_text(PLAN_FORMATS["dot"](plan), encoding="utf-8")
    done = subprocess.run(
        ["dot", "-Tsvg", str(source)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr and "Error" not in done.stderr, done.stderr
    svg = ET.fromstring(done.stdout)
    ns = {"svg": "http://www.w3.org/2000/svg"}
    groups = svg.findall(".//svg:g", ns)
    titles = {
        g.get("class"): []
        for g in groups  # node / edge / cluster
    }
    for g in groups:
        title = g.find("svg:title", ns)
        if title is not None and g.get("class") in titles:
            titles[g.get("class")].append(title.text or "")
    # Graphviz names each node by its quoted id (a backslash stays doubled in a name) and
    # shows its label, where the escapes resolve: the ids survived quoting intact.
    assert sorted(t.replace("\\\\", "\\") for t in titles["node"]) == sorted(plan.graph.nodes)
    shown = [
        "".join(text.itertext())
        for g in groups
        if g.get("class") == "node"
        for text in g.findall(".//svg:text", ns)
    ]
    assert sorted(shown) == sorted(plan.graph.nodes)
    assert len(titles["edge"]) == plan.graph.number_of_edges()
    assert sorted(titles["cluster"]) == sorted(f"cluster_{p.value}" for p in plan.phases)


MERMAID_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<pre id="out">pending</pre><script src="{script}"></script><script>
const SOURCE = {source};
mermaid.initialize({{startOnLoad: false, securityLevel: "strict"}});
mermaid.render("g", SOURCE).then(
  r => {{ document.getElementById("out").textContent = "OK"; }},
  e => {{ document.getElementById("out").textContent = "ERROR " + e; }});
</script></body></html>"""


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("AKSFLIGHT_MERMAID_JS") or shutil.which("chromium") is None,
    reason="set AKSFLIGHT_MERMAID_JS to a mermaid.min.js and install chromium",
)
@pytest.mark.parametrize("name", sorted(PLANS))
def test_real_mermaid_renders_the_flowchart(name: str, tmp_path: Path) -> None:
    """The real Mermaid parser, in a headless browser: no network, a local script."""
    script = Path(os.environ["AKSFLIGHT_MERMAID_JS"]).resolve()
    page = tmp_path / "page.html"
    source = json.dumps(PLAN_FORMATS["mermaid"](PLANS[name]()))
    page.write_text(MERMAID_PAGE.format(script=script.as_uri(), source=source), "utf-8")
    done = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--virtual-time-budget=15000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    result = re.search(r'<pre id="out">([^<]*)', done.stdout)
    assert result is not None, done.stderr[-2000:]
    assert html.unescape(result.group(1)) == "OK"
