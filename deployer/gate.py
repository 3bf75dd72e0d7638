"""The preflight gate: before a step installs anything, probe the phases it needs.

Installing the router needs `router-install`; deploying a service needs `model-deploy` and
`serving`. A failed check stops the step with the findings (the same table `aksflight check`
prints). `skip=True` (`--skip-preflight`) overrides it, loudly. Without an environment
config the gate cannot know which hosts to probe: it says it is skipped and why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from deployer.errors import GateFailed
from rules.model import Evaluation, Phase, Status

if TYPE_CHECKING:
    from preflight.options import ProbeOptions
    from rules.catalogue import Catalogue
    from rules.config import EnvironmentConfig
    from rules.plan import Plan

# The probes, the catalogue and the plan (networkx, the Kubernetes client) are imported
# only when a gate has a config: a deploy without one starts faster.

Say = Callable[[str], None]


class Step(StrEnum):
    ROUTER = "router"
    SERVICE = "service"


STEP_PHASES: dict[Step, tuple[Phase, ...]] = {
    Step.ROUTER: (Phase.ROUTER_INSTALL,),
    Step.SERVICE: (Phase.MODEL_DEPLOY, Phase.SERVING),
}
SKIP_WARNING = (
    "WARNING: --skip-preflight: the preflight gate is OFF for {what}; if the network does not "
    "allow it the deployment hangs or fails later, with less to go on"
)
NO_CONFIG = (
    "preflight gate skipped for {what}: no environment config (-c FILE), so there is "
    "nothing to probe; the network is not checked before deploying"
)


@dataclass(frozen=True)
class Gate:
    """How a deploy checks the network first. `config` is the parsed environment config."""

    config: EnvironmentConfig | None = None
    options: ProbeOptions | None = None  # None: the defaults
    skip: bool = False
    extra_catalogues: Sequence[Catalogue] = ()

    def plan(self, step: Step) -> Plan | None:
        """The plan for the step's phases (offline), or None without a config."""
        if self.config is None:
            return None
        from rules.catalogue import requirements_for
        from rules.plan import build_plan

        requirements = requirements_for(self.config, self.extra_catalogues)
        return build_plan(requirements, STEP_PHASES[step])

    def full_plan(self) -> Plan | None:
        """Every phase: what diagnosis maps a failure onto."""
        if self.config is None:
            return None
        from rules.catalogue import requirements_for
        from rules.plan import build_plan

        return build_plan(requirements_for(self.config, self.extra_catalogues))


@dataclass(frozen=True)
class GateResult:
    step: Step
    ran: bool
    plan: Plan | None = None
    evaluation: Evaluation | None = None
    reason: str = ""


def _render(evaluation: Evaluation, plan: Plan) -> str:
    try:
        from reports import CHECK_FORMATS
    except ImportError:  # pragma: no cover - reports always ships with the deployer
        return "\n".join(f"{f.check.id}: {f.status.value}: {f.reason}" for f in evaluation.findings)
    return CHECK_FORMATS["table"](evaluation, plan)


def run_gate(gate: Gate, step: Step, say: Say) -> GateResult:
    """Probe the step's phases; raise GateFailed (with the findings) when a check fails."""
    what = "installing the router" if step is Step.ROUTER else "deploying the service"
    if gate.skip:
        say(SKIP_WARNING.format(what=what))
        return GateResult(step, False, gate.plan(step), reason="--skip-preflight")
    plan = gate.plan(step)
    if plan is None:
        say(NO_CONFIG.format(what=what))
        return GateResult(step, False, reason="no environment config")
    from preflight import eventloop
    from preflight.runner import run_plan
    from rules.evaluate import evaluate

    phases = ", ".join(p.value for p in plan.phases)
    say(f"preflight gate for {what}: probing {len(plan.checks)} checks ({phases})")
    from preflight.options import ProbeOptions

    result = eventloop.run(run_plan(plan, gate.options or ProbeOptions()))
    evaluation = evaluate(plan, result.observations, result.duration_s)
    if evaluation.verdict is Status.FAIL:
        failed = [f.check.id for f in evaluation.findings if f.status is Status.FAIL]
        first = evaluation.first_failing_phase
        where = f"phase {first.value}" if first else "a check"
        raise GateFailed(
            f"preflight gate: {where} fails ({len(failed)} failed: {', '.join(failed[:5])}"
            f"{', ...' if len(failed) > 5 else ''}); nothing was installed "
            "(fix the network, or --skip-preflight to deploy anyway)",
            evaluation,
            plan,
            _render(evaluation, plan),
        )
    say(f"preflight gate passed ({evaluation.verdict.value}) in {result.duration_s:.1f} s")
    return GateResult(step, True, plan, evaluation)
