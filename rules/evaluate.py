"""Judging observations: each check's finding, each phase's verdict, the first phase that breaks.

Pure: takes the plan and what the probes saw, never touches the network. Checks that did
not run are reconstructed with `Plan.decide`, the same rule the runner used, so a blocked
finding always names the failed check it waited on.
"""

from __future__ import annotations

from collections.abc import Mapping

from rules.model import (
    PHASE_SYMPTOMS,
    Check,
    CheckKind,
    Evaluation,
    Finding,
    Observation,
    Phase,
    PhaseVerdict,
    ProbeStatus,
    Status,
)
from rules.names import ADDRESS_LOOPBACK, ADDRESS_PRIVATE, ADDRESS_RESERVED
from rules.plan import NodeResult, NodeState, Plan, result_of
from rules.remediation import allow_hint, remediation_for


def _dns_finding(check: Check, obs: Observation) -> tuple[Status, str, str]:
    classes: Mapping[str, str] = obs.evidence.get("address_classes", {})
    addresses = list(classes) or list(obs.evidence.get("addresses", []))
    shown = ", ".join(addresses[:4]) + (" …" if len(addresses) > 4 else "")
    server = obs.evidence.get("server") or "the resolver"
    privatelink = bool(obs.evidence.get("privatelink"))
    kinds = set(classes.values())
    if kinds and kinds <= {ADDRESS_LOOPBACK, ADDRESS_RESERVED}:
        return (
            Status.FAIL,
            f"{server} answered {shown}: the name is sinkholed by a DNS filter",
            f"{_impact(check)}; remove the DNS filter entry for {check.target} "
            "or forward the zone to Azure DNS (168.63.129.16)",
        )
    private = ADDRESS_PRIVATE in kinds
    if check.expect_private is True:
        if private:
            path = " through a privatelink CNAME" if privatelink else ""
            return Status.PASS, f"private endpoint answer {shown}{path} from {server}", ""
        zone = check.private_link_zone or "the privatelink zone"
        return (
            Status.FAIL,
            f"public answer {shown} from {server}, but the config says a private endpoint exists",
            f"{_impact(check)}: traffic would go to the public endpoint; link the private DNS "
            f"zone {zone} to the VNet, or make the custom DNS forward it to 168.63.129.16",
        )
    if check.expect_private is False and private:
        why = "a privatelink CNAME" if privatelink else "no privatelink CNAME"
        return (
            Status.WARN,
            f"private answer {shown} from {server} ({why}) for a host the config gives no "
            "private endpoint",
            "if a private endpoint exists, list it in network.private_endpoints; otherwise "
            f"the resolver {server} rewrites {check.target} — find out why",
        )
    return Status.PASS, f"{shown} from {server}", ""


def _ok_finding(plan: Plan, check: Check, obs: Observation) -> tuple[Status, str, str]:
    evidence = obs.evidence
    if check.kind is CheckKind.DNS:
        return _dns_finding(check, obs)
    if check.kind is CheckKind.TCP:
        return Status.PASS, f"connected to {evidence.get('address', check.target)}", ""
    if check.kind is CheckKind.TLS:
        issuer = evidence.get("issuer")
        return Status.PASS, "certificate verified" + (f", issued by {issuer}" if issuer else ""), ""
    if check.kind is CheckKind.HTTP:
        status_code = evidence.get("status_code")
        proxy = evidence.get("via_proxy")
        reason = f"HTTP {status_code}" + (f" through proxy {proxy}" if proxy else "")
        if proxy and "azureml-aks/api-server" in check.requirement_ids:
            return (
                Status.WARN,
                reason,
                f"the API server {check.target} would be reached through a proxy; add it to "
                "NO_PROXY (AKS's own traffic to the API server must not be proxied)",
            )
        return Status.PASS, reason, ""
    detail = obs.detail or "ok"
    return Status.PASS, detail, ""


def _impact(check: Check) -> str:
    symptom = PHASE_SYMPTOMS[check.phase]
    return f"{check.phase.value}: {symptom}" + (f" — {check.breaks}" if check.breaks else "")


def judge(plan: Plan, check: Check, obs: Observation) -> Finding:
    """One observation → one finding."""
    if obs.status is ProbeStatus.OK:
        status, reason, remedy = _ok_finding(plan, check, obs)
    elif obs.status is ProbeStatus.SKIPPED:
        status, reason, remedy = Status.SKIPPED, obs.detail or "skipped", ""
    else:
        status = Status.WARN if check.severity == "warn" else Status.FAIL
        reason = f"{obs.status.value}: {obs.detail}" if obs.detail else obs.status.value
        remedy = (
            f"{_impact(check)}. {remediation_for(check, obs)} "
            f"{allow_hint(plan.requirements, check)}".strip()
        )
    return Finding(check=check, status=status, reason=reason, observation=obs, remediation=remedy)


def _phase_verdict(phase: Phase, plan: Plan, findings: Mapping[str, Finding]) -> PhaseVerdict:
    needed = [findings[c] for c in plan.needed_by(phase) if c in findings]
    failed = tuple(f.check.id for f in needed if f.status is Status.FAIL)
    statuses = {f.status for f in needed}
    if failed:
        return PhaseVerdict(phase, Status.FAIL, failed)
    if Status.BLOCKED in statuses:
        blocked = tuple(sorted({f.blocked_by for f in needed if f.blocked_by}))
        return PhaseVerdict(phase, Status.BLOCKED, blocked)
    if Status.WARN in statuses:
        return PhaseVerdict(phase, Status.WARN)
    if needed and statuses == {Status.SKIPPED}:
        return PhaseVerdict(phase, Status.SKIPPED)
    return PhaseVerdict(phase, Status.PASS)


def evaluate(
    plan: Plan, observations: Mapping[str, Observation], duration_s: float = 0.0
) -> Evaluation:
    """Findings for every check of the plan, in plan order, with the phase verdicts."""
    done: dict[str, NodeResult] = {}
    findings: dict[str, Finding] = {}
    for node in plan.order():
        decision = plan.decide(node, done)
        check = plan.checks.get(node)
        if check is None:  # a phase gate
            done[node] = decision
            continue
        obs = observations.get(node)
        if decision.state is NodeState.RUN and obs is not None:
            findings[node] = judge(plan, check, obs)
            done[node] = result_of(obs)
            continue
        if decision.state is NodeState.RUN:
            decision = NodeResult(NodeState.SKIPPED, reason="not run")
        done[node] = decision
        if decision.state is NodeState.BLOCKED:
            findings[node] = Finding(
                check=check,
                status=Status.BLOCKED,
                reason=f"not run: waits on {decision.root}, which failed",
                blocked_by=decision.root,
                remediation=f"fix {decision.root} first",
            )
        else:
            findings[node] = Finding(check=check, status=Status.SKIPPED, reason=decision.reason)
    phases = tuple(_phase_verdict(p, plan, findings) for p in plan.phases)
    first = next((v.phase for v in phases if v.status is Status.FAIL), None)
    statuses = {f.status for f in findings.values()}
    if Status.FAIL in statuses:
        verdict = Status.FAIL
    elif Status.WARN in statuses:
        verdict = Status.WARN
    else:
        verdict = Status.PASS
    return Evaluation(
        findings=tuple(findings.values()),
        phases=phases,
        verdict=verdict,
        first_failing_phase=first,
        duration_s=duration_s,
    )
