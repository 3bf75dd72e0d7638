"""The plan a probe pod runs: the same plan, with the checks only a pod can make.

From inside the cluster the pod-network checks (`peer:router`, `peer:model-pods`) can
run, and CoreDNS gets a check of its own: the cluster's own service name must resolve
(`dns:kubernetes.default.svc.cluster.local`). External names in the plan then resolve
through CoreDNS and its forwarders, which is the path the router and the model pods use.
"""

from __future__ import annotations

from dataclasses import replace

from rules.model import Check, CheckKind, Phase
from rules.plan import Plan, check_id, gate_id

CLUSTER_DNS_NAME = "kubernetes.default.svc.cluster.local"
CLUSTER_DNS_CHECK = check_id(CheckKind.DNS, CLUSTER_DNS_NAME)
PEER_CHECKS = ("peer:router", "peer:model-pods")


def _cluster_dns_check() -> Check:
    return Check(
        id=CLUSTER_DNS_CHECK,
        kind=CheckKind.DNS,
        phase=Phase.ROUTER_STARTUP,
        target=CLUSTER_DNS_NAME,
        phases=(Phase.ROUTER_STARTUP,),
        purpose="CoreDNS answers for the cluster's own names (the API server's service)",
        source="in-cluster check",
        breaks="pods cannot resolve cluster services: CoreDNS is down or not reachable",
    )


def in_cluster_plan(plan: Plan) -> Plan:
    """A copy of `plan` whose pod-network checks may run, plus the CoreDNS check when the
    plan has the router start-up phase (the router resolves the API service then)."""
    checks = {
        cid: replace(c, unprobeable_reason=None) if c.kind is CheckKind.PEER else c
        for cid, c in plan.checks.items()
    }
    nodes, edges = list(plan.nodes), list(plan.edges)
    if Phase.ROUTER_STARTUP in plan.phases and CLUSTER_DNS_CHECK not in checks:
        check = _cluster_dns_check()
        checks[check.id] = check
        nodes.append(check.id)
        edges.append((check.id, gate_id(Phase.ROUTER_STARTUP)))
        index = plan.phases.index(Phase.ROUTER_STARTUP)
        if index > 0:
            edges.append((gate_id(plan.phases[index - 1]), check.id))
    return Plan(plan.requirements, checks, tuple(nodes), tuple(edges), plan.phases, plan.keep_going)


def needs_peers(plan: Plan) -> bool:
    return any(c in plan.checks for c in PEER_CHECKS)


def needs_api(plan: Plan) -> bool:
    """Whether the probe pods need a service-account token: Kubernetes checks, or peer
    checks (the pods find each other through the API, as the router finds its peers)."""
    return needs_peers(plan) or any(c.kind is CheckKind.KUBERNETES for c in plan.checks.values())
