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
# Label characters passed through as they are; anything else becomes `#<code>;`.
_MERMAID_LABEL_SAFE = re.compile(r"[A-Za-z0-9 .:_/*,+=@()-]")


def mermaid_id(node: str) -> str:
    """A Mermaid node id for a plan node: letters, digits and `_` only, never a keyword."""
    readable = _MERMAID_ID_UNSAFE.sub("_", node).strip("_")[:48]
    digest = hashlib.sha1(node.encode("utf-8", "surrogatepass"), usedforsecurity=False)
    return f"n_{readable}_{digest.hexdigest()[:8]}"


def mermaid_label(text: str) -> str:
    """`text` as a quoted Mermaid label: unsafe characters as numeric entity codes."""
    flat = one_line(text)
    encoded = "".join(c if _MERMAID_LABEL_SAFE.fullmatch(c) else f"#{ord(c)};" for c in flat)
    return f'"{encoded}"'


def _phase_of(plan: Plan) -> dict[str, Phase]:
    """Which phase box each node is drawn in: a check in its first phase, a gate in its own."""
    placed = {check_id: check.phase for check_id, check in plan.checks.items()}
    placed.update({gate_id(phase): phase for phase in plan.phases})
    return placed


def plan_mermaid(plan: Plan, options: Options = DEFAULT_OPTIONS) -> str:
    """A Mermaid flowchart: a subgraph per phase, edges from prerequisite to dependant."""
    del options  # no width or colour in a diagram's source
    placed = _phase_of(plan)
    order = plan.order()
    lines = ["flowchart LR"]
    for phase in plan.phases:
        title = f"{phase_number(phase)}. {PHASE_TITLES[phase]}"
        box = mermaid_id(f"phase-box:{phase.value}")
        lines.append(f"  subgraph {box}[{mermaid_label(title)}]")
        lines.append("    direction TB")
        for node in order:
            if placed.get(node) is not phase:
                continue
            label = mermaid_label(node)
            shape = f"{{{{{label}}}}}" if node not in plan.checks else f"[{label}]"
            lines.append(f"    {mermaid_id(node)}{shape}")
        lines.append("  end")
    for before, after in sorted(plan.graph.edges):
        lines.append(f"  {mermaid_id(before)} --> {mermaid_id(after)}")
    lines.append("  classDef gate fill:#e8eefc,stroke:#4a63b0,stroke-width:2px")
    lines.append("  classDef unprobed stroke-dasharray:5 3,color:#666")
    gates = [mermaid_id(gate_id(phase)) for phase in plan.phases]
    if gates:
        lines.append(f"  class {','.join(gates)} gate")
    unprobed = [mermaid_id(c.id) for c in plan.checks.values() if c.unprobeable_reason]
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
    placed = _phase_of(plan)
    order = plan.order()
    lines = [
        'digraph "aksflight plan" {',
        "  rankdir=LR;",
        "  newrank=true;",
        '  node [shape=box, style="rounded", fontname="Helvetica", fontsize=10];',
        '  edge [color="#777777"];',
    ]
    for phase in plan.phases:
        title = f"{phase_number(phase)}. {PHASE_TITLES[phase]}"
        lines.append(f"  subgraph {dot_quote('cluster_' + phase.value)} {{")
        lines.append(f'    label={dot_quote(title)}; style="rounded"; color="#4a63b0";')
        for node in order:
            if placed.get(node) is not phase:
                continue
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
    for before, after in sorted(plan.graph.edges):
        lines.append(f"  {dot_quote(before)} -> {dot_quote(after)};")
    lines.append("}")
    return "\n".join(lines) + "\n"
