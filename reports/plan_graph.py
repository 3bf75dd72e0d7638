"""The plan as a picture: Mermaid and Graphviz DOT, one box (cluster) per phase.

Check ids hold `:`, `.` and `*`, which neither language accepts bare as a node id. DOT
takes any quoted string, so ids are quoted and escaped; Mermaid does not, so each node
gets a safe id derived from the check id (readable part plus a hash, so two ids that clean
up alike never collide) and shows the real id as an entity-encoded label. Phase gates
(`phase:<id>`) are drawn as hexagons inside their phase.
"""

from __future__ import annotations

import hashlib
import re

from reports._common import DEFAULT_OPTIONS, Options, one_line, phase_number
from rules.model import PHASE_TITLES, Phase
from rules.plan import Plan, gate_id

# -- Mermaid ------------------------------------------------------------------------------

_MERMAID_ID_UNSAFE = re.compile(r"[^A-Za-z0-9]+")
# Label characters other than these become `#<code>;` (Mermaid's entity codes).
_MERMAID_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9 .:_/*,+=@()-]")


def mermaid_id(node: str) -> str:
    """A Mermaid node id for a plan node: letters, digits and `_` only, never a keyword."""
    readable = _MERMAID_ID_UNSAFE.sub("_", node).strip("_")[:48]
    digest = hashlib.sha1(node.encode("utf-8", "surrogatepass"), usedforsecurity=False)
    return f"n_{readable}_{digest.hexdigest()[:8]}"


def mermaid_label(text: str) -> str:
    """`text` as a quoted Mermaid label: unsafe characters as numeric entity codes."""
    encoded = _MERMAID_LABEL_UNSAFE.sub(lambda m: f"#{ord(m.group())};", one_line(text))
    return f'"{encoded}"'


def _boxes(plan: Plan) -> dict[Phase, list[str]]:
    """The nodes drawn in each phase's box, in plan order: a check in its first phase, a
    gate in its own."""
    gates = {gate_id(phase): phase for phase in plan.phases}
    boxes: dict[Phase, list[str]] = {phase: [] for phase in plan.phases}
    for node in plan.order():
        check = plan.checks.get(node)
        phase = check.phase if check is not None else gates.get(node)
        if phase in boxes:
            boxes[phase].append(node)
    return boxes


def plan_mermaid(plan: Plan, options: Options = DEFAULT_OPTIONS) -> str:
    """A Mermaid flowchart: a subgraph per phase, edges from prerequisite to dependant."""
    del options  # no width or colour in a diagram's source
    ids = {node: mermaid_id(node) for node in plan.nodes}
    lines = ["flowchart LR"]
    for phase, nodes in _boxes(plan).items():
        title = f"{phase_number(phase)}. {PHASE_TITLES[phase]}"
        box = mermaid_id(f"phase-box:{phase.value}")
        lines.append(f"  subgraph {box}[{mermaid_label(title)}]")
        lines.append("    direction TB")
        for node in nodes:
            label = mermaid_label(node)
            shape = f"{{{{{label}}}}}" if node not in plan.checks else f"[{label}]"
            lines.append(f"    {ids[node]}{shape}")
        lines.append("  end")
    for before, after in sorted(plan.edges):
        lines.append(f"  {ids[before]} --> {ids[after]}")
    lines.append("  classDef gate fill:#e8eefc,stroke:#4a63b0,stroke-width:2px")
    lines.append("  classDef unprobed stroke-dasharray:5 3,color:#666")
    gates = [ids[gate_id(phase)] for phase in plan.phases]
    if gates:
        lines.append(f"  class {','.join(gates)} gate")
    unprobed = [ids[c.id] for c in plan.checks.values() if c.unprobeable_reason]
    if unprobed:
        lines.append(f"  class {','.join(sorted(unprobed))} unprobed")
    return "\n".join(lines) + "\n"


# -- Graphviz DOT ---------------------------------------------------------------------------


def dot_quote(text: str) -> str:
    """`text` as a DOT quoted string (on one line, backslashes and quotes escaped).

    In a node name DOT keeps `\\\\` as two characters (only `\\"` is an escape), so a name
    with a backslash shows it doubled; labels are escStrings and show it once. Doubling
    every backslash is what keeps a trailing one from escaping the closing quote.
    """
    flat = one_line(text).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{flat}"'


def plan_dot(plan: Plan, options: Options = DEFAULT_OPTIONS) -> str:
    """A Graphviz digraph: a cluster per phase, every id quoted."""
    del options
    lines = [
        'digraph "aksflight plan" {',
        "  rankdir=LR;",
        "  newrank=true;",
        '  node [shape=box, style="rounded", fontname="Helvetica", fontsize=10];',
        '  edge [color="#777777"];',
    ]
    for phase, nodes in _boxes(plan).items():
        title = f"{phase_number(phase)}. {PHASE_TITLES[phase]}"
        lines.append(f"  subgraph {dot_quote('cluster_' + phase.value)} {{")
        lines.append(f'    label={dot_quote(title)}; style="rounded"; color="#4a63b0";')
        for node in nodes:
            check = plan.checks.get(node)
            if check is None:
                attrs = 'shape=hexagon, style="filled", fillcolor="#e8eefc"'
            else:
                attrs = f"tooltip={dot_quote(check.purpose or node)}"
                if check.unprobeable_reason:
                    attrs += ', style="rounded,dashed"'
            # The label is an escString: with every backslash doubled it shows the id as is.
            lines.append(f"    {dot_quote(node)} [label={dot_quote(node)}, {attrs}];")
        lines.append("  }")
    for before, after in sorted(plan.edges):
        lines.append(f"  {dot_quote(before)} -> {dot_quote(after)};")
    lines.append("}")
    return "\n".join(lines) + "\n"
