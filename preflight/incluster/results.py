"""From probe-pod outcomes to verdicts: each report is judged by the same rules as a run
from here; a pod that never reported is a finding of its own."""

from __future__ import annotations

from dataclasses import dataclass

from preflight.incluster.launcher import TargetOutcome
from rules.evaluate import evaluate
from rules.model import Check, CheckKind, Evaluation, Finding, Phase, Status
from rules.plan import Plan

# What to do about a pod that could not run its probes, by the reason it gave.
_REMEDY = {
    "ImagePullBackOff": "the nodes cannot pull the probe image: mirror it into a registry "
    "the nodes can reach (--image) and allow that registry's egress",
    "ErrImagePull": "the nodes cannot pull the probe image: mirror it into a registry the "
    "nodes can reach (--image) and allow that registry's egress",
    "InvalidImageName": "fix --image",
    "Unschedulable": "no node of the pool fits the probe pod (50m CPU, 96Mi): free room, "
    "or check the pool's taints and the node selector",
    "Timeout": "the pod did not finish in time: see its Events (no CNI, a sandbox "
    "that cannot be created, a slow image pull), or raise --in-cluster-timeout",
    "NoOutput": "the probe printed no observations: see the pod's log",
}


@dataclass(frozen=True, slots=True)
class TargetResult:
    """One target's column: an evaluation, or the finding that says why there is none."""

    outcome: TargetOutcome
    evaluation: Evaluation | None
    problem: Finding | None

    @property
    def name(self) -> str:
        return self.outcome.target.name


def pod_problem(outcome: TargetOutcome) -> Finding:
    target = outcome.target
    where = f"node {target.node}" if target.node else f"node pool {target.pool}"
    check = Check(
        id=f"cluster:probe-pod:{target.name}",
        kind=CheckKind.CLUSTER,
        phase=Phase.ROUTER_INSTALL,
        target=target.name,
        phases=(Phase.ROUTER_INSTALL,),
        purpose=f"a pod starts and runs on {where}",
        source="in-cluster run",
        breaks="pods of the router and the models cannot start there either",
    )
    reason = outcome.reason or "NoOutput"
    remedy = _REMEDY.get(reason, _REMEDY["Timeout"])
    if reason.startswith("Init"):
        remedy = "an init container failed: see the pod's Events"
    return Finding(
        check=check,
        status=Status.FAIL,
        reason=f"{reason}: {outcome.problem}" if outcome.problem else reason,
        remediation=remedy,
    )


def judge_outcome(plan: Plan, outcome: TargetOutcome) -> TargetResult:
    if outcome.report is None:
        return TargetResult(outcome, None, pod_problem(outcome))
    report = outcome.report
    evaluation = evaluate(plan, report.observations, report.duration_s)
    return TargetResult(outcome, evaluation, None)


def verdict(results: list[TargetResult]) -> Status:
    statuses = {r.evaluation.verdict for r in results if r.evaluation is not None}
    if any(r.problem is not None for r in results) or Status.FAIL in statuses:
        return Status.FAIL
    return Status.WARN if Status.WARN in statuses else Status.PASS
