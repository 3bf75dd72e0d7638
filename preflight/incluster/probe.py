"""What `aksflight probe` does inside a probe pod: the same `run_plan` as a check from
anywhere else, plus the pod-network checks, reported as one observation document."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from preflight import eventloop
from preflight.context import ProbeContext
from preflight.incluster.peer import (
    MODEL_PORT,
    PORTS_BY_CHECK,
    ROUTER_PORT,
    DiscoveryError,
    Peer,
    PeerListener,
    discover_peers,
    probe_peers,
)
from preflight.incluster.plan import PEER_CHECKS
from preflight.incluster.wire import ProbeReport
from preflight.options import ProbeOptions
from preflight.runner import run_plan
from rules.model import Observation, ProbeStatus
from rules.plan import NodeState, Plan


@dataclass(frozen=True, slots=True)
class PeerSettings:
    """How the pod finds and tests its peers (all from the Job's environment and args)."""

    selector: str
    expected: int
    namespace: str
    listen: str = "0.0.0.0"  # noqa: S104 (a pod listens on its own address for its peers)
    router_port: int = ROUTER_PORT
    model_port: int = MODEL_PORT
    linger_s: float = 30.0

    @property
    def ports(self) -> dict[str, int]:
        return {"router": self.router_port, "model": self.model_port}


@dataclass(frozen=True, slots=True)
class Where:
    pool: str = ""
    node: str = ""
    pod: str = ""
    address: str = ""


async def _peer_observations(
    plan: Plan,
    options: ProbeOptions,
    settings: PeerSettings,
    runnable: list[str],
) -> tuple[dict[str, Observation], list[Peer]]:
    context = ProbeContext(options)
    out: dict[str, Observation] = {}
    try:
        api = await context.kube_client()
        if api is None:
            for check_id in runnable:
                out[check_id] = Observation(
                    check_id, ProbeStatus.SKIPPED, 0.0, context.kube_skip_reason
                )
            return out, []
        wait = min(settings.linger_s, max(options.timeout * 3, 5.0))
        try:
            peers = await discover_peers(
                api, settings.namespace, settings.selector, settings.expected, wait
            )
        except DiscoveryError as exc:
            for check_id in runnable:
                out[check_id] = Observation(check_id, exc.status, 0.0, str(exc))
            return out, []
        for check_id in runnable:
            port = settings.ports[PORTS_BY_CHECK[check_id]]
            out[check_id] = await probe_peers(
                plan.checks[check_id], peers, port, settings.expected, options.timeout
            )
        return out, peers
    finally:
        await context.aclose()


async def run_probe(
    plan: Plan, options: ProbeOptions, where: Where, peers: PeerSettings | None
) -> ProbeReport:
    """Run `plan` (an `in_cluster_plan`) from this pod; with `peers`, listen for the
    other probe pods first and stay until they have tested this one."""
    started = time.perf_counter()
    listener = None
    peer_checks = [c for c in PEER_CHECKS if c in plan.checks]
    if peers is not None and peer_checks:
        listener = await PeerListener(peers.listen, list(peers.ports.values())).start()
    try:
        result = await run_plan(plan, options)
        observations = dict(result.observations)
        if listener is not None and peers is not None:
            # Only the peer checks the plan let run (not blocked by an earlier phase).
            runnable = [
                c
                for c in peer_checks
                if c in result.observations and result.results[c].state is NodeState.SKIPPED
            ]
            found, others = await _peer_observations(plan, options, peers, runnable)
            observations.update(found)
            addresses = {p.address for p in others if p.address != where.address}
            if addresses:
                await listener.wait_for(addresses, peers.linger_s)
    finally:
        if listener is not None:
            await listener.close()
    return ProbeReport(
        pool=where.pool,
        node=where.node,
        pod=where.pod,
        address=where.address,
        observations=observations,
        duration_s=time.perf_counter() - started,
    )


def probe(
    plan: Plan, options: ProbeOptions, where: Where, peers: PeerSettings | None
) -> ProbeReport:
    return eventloop.run(run_probe(plan, options, where, peers))


def where_from_env(env: Mapping[str, str]) -> Where:
    """Where the pod runs, from the downward-API variables the Job sets."""
    return Where(
        pool=env.get("AKSFLIGHT_POOL", ""),
        node=env.get("NODE_NAME", ""),
        pod=env.get("POD_NAME", ""),
        address=env.get("POD_IP", ""),
    )
