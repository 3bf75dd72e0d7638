"""The plan: a DAG of checks, ordered in time by the documented deployment phases.

Nodes are `Check`s plus one gate per phase (`phase:<id>`). Edges point from a
prerequisite to what waits on it: DNS → TCP → TLS → HTTP for one host and port; the
Kubernetes queries wait on TLS to the API server; every check of a phase waits on the gate
of the phase before it, and a gate waits on every check its phase needs. So a failure
blocks exactly what the documentation says cannot happen without it, and topological
generations give the timeline.

`Plan.decide` is the one place that says whether a node may run, given what finished
before it; the preflight runner and the evaluation both use it, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from itertools import pairwise
from typing import TYPE_CHECKING

from rules.model import PHASE_ORDER, Check, CheckKind, Observation, Phase, ProbeStatus, Requirement
from rules.names import is_ip_address

if TYPE_CHECKING:
    import networkx as nx


def gate_id(phase: Phase) -> str:
    return f"phase:{phase.value}"


class NodeState(StrEnum):
    """How a node of the plan ended (or, for RUN, that it may start now)."""

    RUN = "run"
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    BLOCKED = "blocked"


@dataclass(frozen=True, slots=True)
class NodeResult:
    state: NodeState
    # For BLOCKED and FAILED: the failed check at the root of it (never a gate).
    root: str | None = None
    reason: str = ""


RUN = NodeResult(NodeState.RUN)


def result_of(observation: Observation) -> NodeResult:
    """What an observation means for the checks that wait on it."""
    if observation.status is ProbeStatus.OK:
        return NodeResult(NodeState.OK)
    if observation.status is ProbeStatus.SKIPPED:
        return NodeResult(NodeState.SKIPPED, reason=observation.detail)
    return NodeResult(NodeState.FAILED, root=observation.check_id)


@dataclass(eq=False)
class Plan:
    """Checks, their requirements, and the DAG that orders them.

    The DAG is kept as its node and edge lists, with adjacency maps built from them: the
    hot paths (ordering, rendering 30,000 checks, the runner) walk plain dicts, at a
    fraction of the cost of networkx's views and of its import. `graph` is the same DAG
    as a networkx `DiGraph`, built on first use, for analysis and for the tests that
    check that the two agree. Everything derived is computed once: a plan is not changed
    after it is built (`in_cluster_plan` builds a new one). Repeated nodes and edges count
    once, as in networkx; an edge to a node the plan does not hold is a `ValueError`."""

    requirements: tuple[Requirement, ...]
    checks: dict[str, Check]
    nodes: tuple[str, ...]  # checks and phase gates, in build order
    edges: tuple[tuple[str, str], ...]  # (prerequisite, dependant), in build order
    phases: tuple[Phase, ...]
    keep_going: bool = False
    _pred: dict[str, list[str]] = field(init=False, repr=False)
    _succ: dict[str, list[str]] = field(init=False, repr=False)
    _generations: list[list[str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.nodes = tuple(dict.fromkeys(self.nodes))
        self.edges = tuple(dict.fromkeys(self.edges))
        pred: dict[str, list[str]] = {node: [] for node in self.nodes}
        succ: dict[str, list[str]] = {node: [] for node in self.nodes}
        try:
            for before, after in self.edges:
                succ[before].append(after)
                pred[after].append(before)
        except KeyError as exc:
            raise ValueError(f"an edge names {exc.args[0]!r}, which is not a node") from None
        self._pred, self._succ = pred, succ
        self._generations = _generations(self.nodes, pred, succ)

    @cached_property
    def graph(self) -> nx.DiGraph[str]:
        import networkx as nx

        graph: nx.DiGraph[str] = nx.DiGraph()
        graph.add_nodes_from(self.nodes)
        graph.add_edges_from(self.edges)
        return graph

    # -- structure -------------------------------------------------------------------
    def __contains__(self, node_id: object) -> bool:
        return node_id in self._pred

    def prerequisites(self, node_id: str) -> list[str]:
        return sorted(self._pred[node_id])

    def dependants(self, node_id: str) -> list[str]:
        return sorted(self._succ[node_id])

    def in_degree(self, node_id: str) -> int:
        return len(self._pred[node_id])

    def order(self) -> list[str]:
        """Every node, prerequisites first: generation by generation, each in build order
        (what networkx's `topological_sort` gives for a graph built with the same node and
        edge order, which `graph` is)."""
        return [node for step in self._generations for node in step]

    def timeline(self) -> list[list[str]]:
        """Topological generations: what can run together, step by step (each sorted)."""
        return [sorted(step) for step in self._generations]

    def checks_in(self, phase: Phase) -> list[Check]:
        """Checks whose first phase is `phase`, in plan order."""
        return [
            self.checks[n]
            for n in self.order()
            if n in self.checks and self.checks[n].phase is phase
        ]

    def needed_by(self, phase: Phase) -> list[str]:
        """Every check the phase needs (also those first needed earlier)."""
        return sorted(p for p in self._pred.get(gate_id(phase), ()) if p in self.checks)

    def blocks(self, check_id: str) -> list[str]:
        """Every check that cannot run when `check_id` fails (all its descendants)."""
        seen: set[str] = set()
        pending = [check_id]
        while pending:
            for after in self._succ[pending.pop()]:
                if after not in seen:
                    seen.add(after)
                    pending.append(after)
        return sorted(n for n in seen if n in self.checks)

    def first_phase_broken_by(self, check_id: str) -> Phase:
        return self.checks[check_id].phase

    def probe_targets(self) -> list[tuple[str, tuple[int, ...]]]:
        """Each concrete host name with the ports probes will connect to (for the lab)."""
        ports: dict[str, set[int]] = {}
        for check in self.checks.values():
            if check.unprobeable_reason or check.kind not in (CheckKind.DNS, CheckKind.TCP):
                continue
            entry = ports.setdefault(check.target, set())
            if check.kind is CheckKind.TCP and check.port is not None:
                entry.add(check.port)
        return sorted((host, tuple(sorted(p))) for host, p in ports.items())

    # -- flow ------------------------------------------------------------------------
    def decide(self, node_id: str, done: Mapping[str, NodeResult]) -> NodeResult:
        """May `node_id` run, given the results of its prerequisites?

        Failed or blocked prerequisite → BLOCKED by the root failure (a gate ignores
        failures of warn-level checks, which degrade a deployment but do not stop it).
        A skipped direct prerequisite (not a gate) → SKIPPED. A gate → OK once nothing
        before it failed. A check that cannot be probed from here → SKIPPED with its
        reason. Otherwise RUN.
        """
        roots = []
        skipped = []
        check = self.checks.get(node_id)
        for prerequisite in self.prerequisites(node_id):
            result = done[prerequisite]
            if result.state in (NodeState.FAILED, NodeState.BLOCKED):
                root = result.root or prerequisite
                if check is None and self._degrades_only(root):
                    continue  # a warn-level need (telemetry) does not stop the next phase
                roots.append(root)
            elif result.state is NodeState.SKIPPED and prerequisite in self.checks:
                skipped.append(prerequisite)
        if roots:
            root = min(roots, key=self._rank)
            return NodeResult(NodeState.BLOCKED, root=root, reason=f"waits on {root}")
        if check is None:
            return NodeResult(NodeState.OK)
        if skipped:
            return NodeResult(NodeState.SKIPPED, reason=f"{skipped[0]} was skipped")
        if check.unprobeable_reason:
            return NodeResult(NodeState.SKIPPED, reason=check.unprobeable_reason)
        return RUN

    def _degrades_only(self, check_id: str) -> bool:
        check = self.checks.get(check_id)
        return check is not None and check.severity == "warn"

    def _rank(self, node_id: str) -> tuple[int, str]:
        check = self.checks.get(node_id)
        return (check.phase.rank if check else len(PHASE_ORDER), node_id)


def _generations(
    nodes: Iterable[str], pred: Mapping[str, list[str]], succ: Mapping[str, list[str]]
) -> list[list[str]]:
    """Kahn's algorithm, one generation at a time; a cycle is a bug in the builder."""
    waiting = {node: len(before) for node, before in pred.items()}
    current = [node for node in nodes if not waiting[node]]
    steps = []
    while current:
        steps.append(current)
        following = []
        for node in current:
            for after in succ[node]:
                waiting[after] -= 1
                if not waiting[after]:
                    following.append(after)
        current = following
    if sum(len(step) for step in steps) != len(waiting):
        raise ValueError("the plan's dependencies form a cycle")
    return steps


# -- building ----------------------------------------------------------------------------


_CHAIN = {
    "https": (CheckKind.DNS, CheckKind.TCP, CheckKind.TLS, CheckKind.HTTP),
    "http": (CheckKind.DNS, CheckKind.TCP, CheckKind.HTTP),
    "tcp": (CheckKind.DNS, CheckKind.TCP),
    "udp": (CheckKind.DNS,),
}


def check_id(kind: CheckKind, host: str, port: int | None = None) -> str:
    if kind is CheckKind.DNS or port is None:
        return f"{kind}:{host}"
    return f"{kind}:{host}:{port}"


def _chain(req: Requirement) -> list[tuple[CheckKind, int | None]]:
    if req.resolve_only:
        return [(CheckKind.DNS, None)]
    kinds = _CHAIN[req.protocol.value]
    if is_ip_address(req.host):
        kinds = tuple(k for k in kinds if k is not CheckKind.DNS)
    return [(k, None if k is CheckKind.DNS else req.port) for k in kinds]


class _Builder:
    def __init__(self, selected: Collection[Phase], every_phase: bool) -> None:
        self.selected = selected
        self.every_phase = every_phase
        self.checks: dict[str, Check] = {}
        self.edges: dict[tuple[str, str], None] = {}  # an ordered set

    def add(self, check: Check) -> str:
        existing = self.checks.get(check.id)
        if existing is not None:
            phases = tuple(sorted({*existing.phases, *check.phases}, key=lambda p: p.rank))
            check = replace(
                existing,
                phases=phases,
                phase=phases[0],
                requirement_ids=(*existing.requirement_ids, *check.requirement_ids),
                purpose=_join(existing.purpose, check.purpose),
                source=_join(existing.source, check.source),
                breaks=existing.breaks or check.breaks,
                expect_private=_merge_expect(existing.expect_private, check.expect_private),
                private_link_zone=existing.private_link_zone or check.private_link_zone,
                severity="fail" if "fail" in (existing.severity, check.severity) else "warn",
            )
        self.checks[check.id] = check
        return check.id

    def add_requirement(self, req: Requirement, api_tls: str | None) -> None:
        if not self.every_phase:
            phases = tuple(p for p in req.phases if p in self.selected)
            if phases != req.phases:
                req = replace(req, phases=phases)
        if req.kind is not None:
            reason = None
            if req.kind is CheckKind.PEER:
                reason = "pod-network checks run only inside the cluster (--in-cluster)"
            node = self.add(_check_for(req, req.kind, None, reason))
            if api_tls and api_tls in self.checks and req.kind is CheckKind.KUBERNETES:
                self.edges[api_tls, node] = None
            return
        if not req.probeable and req.missing_field is None:
            return  # allowlist-only: a wildcard by design, a tag, or an undocumented name
        reason = None
        if req.missing_field is not None:
            reason = f"{req.host} is a pattern; set {req.missing_field} in the config to probe it"
        previous = None
        for kind, port in _chain(req):
            node = self.add(_check_for(req, kind, port, reason))
            if previous is not None:
                self.edges[previous, node] = None
            previous = node


def _check_for(req: Requirement, kind: CheckKind, port: int | None, reason: str | None) -> Check:
    """The check of one kind that tests `req` (DNS checks carry the private-endpoint facts)."""
    node_id = check_id(kind, req.host, port) if req.kind is None else f"{kind}:{req.host}"
    if kind is CheckKind.DNS:
        expect = True if req.private_endpoint else (None if req.catalogue == "extra" else False)
        zone = req.private_link_zone
    else:
        expect = zone = None
    return Check(
        id=node_id,
        kind=kind,
        phase=req.phases[0],
        target=req.host,
        port=port,
        phases=req.phases,
        requirement_ids=(req.id,),
        purpose=req.purpose,
        source=req.source,
        breaks=req.breaks,
        expect_private=expect,
        private_link_zone=zone,
        severity=req.severity,
        unprobeable_reason=reason,
    )


def _join(a: str, b: str) -> str:
    if not a or b in a:
        return a or b
    return f"{a}; {b}"


def _merge_expect(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def build_plan(
    requirements: Iterable[Requirement],
    phases: Collection[Phase] | None = None,
    *,
    keep_going: bool = False,
) -> Plan:
    """The plan for these requirements, restricted to `phases` (default: all).

    `keep_going`: checks do not wait on the phase before them (the gates still record
    which phase broke), so one run finds every missing rule and nothing serialises."""
    selected = tuple(p for p in PHASE_ORDER if phases is None or p in phases)
    every_phase = len(selected) == len(PHASE_ORDER)
    if every_phase:
        reqs = tuple(r for r in requirements if r.phases)
    else:
        reqs = tuple(r for r in requirements if any(p in selected for p in r.phases))
    builder = _Builder(selected, every_phase)
    api = next((r for r in reqs if r.id == "azureml-aks/api-server"), None)
    api_tls = None
    if (
        api is not None
        and api.port is not None
        and (api.probeable or api.missing_field is not None)
    ):
        api_tls = check_id(CheckKind.TLS, api.host, api.port)
    # Host requirements first, so the Kubernetes checks can wait on the API server's TLS.
    for req in sorted(reqs, key=lambda r: r.kind is not None):
        builder.add_requirement(req, api_tls)

    gates = {p: gate_id(p) for p in selected}
    edges = dict(builder.edges)
    gate_chain = list(gates.values())
    edges.update(dict.fromkeys(pairwise(gate_chain)))
    prior = {p: gates[selected[i - 1]] for i, p in enumerate(selected) if i > 0}
    waits_in_phase = {
        b for a, b in builder.edges if builder.checks[a].phase is builder.checks[b].phase
    }
    for check in builder.checks.values():
        for phase in check.phases:
            edges[check.id, gates[phase]] = None
        gate_before = None if keep_going else prior.get(check.phase)
        # A check that waits on another check of its own phase inherits the gate from it.
        if gate_before is not None and check.id not in waits_in_phase:
            edges[gate_before, check.id] = None
    nodes = (*builder.checks, *gate_chain)
    return Plan(reqs, builder.checks, nodes, tuple(edges), selected, keep_going)
