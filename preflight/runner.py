"""The runner: executes a plan's checks concurrently in dependency order.

A node starts the moment its last prerequisite finishes (not generation by generation),
so a slow or filtered branch holds up only what waits on it. `Plan.decide` says whether a
node runs, is blocked, or is skipped, and `result_of` what an observation means for its
dependants: the same two rules the evaluation uses, so both tell the same story.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from preflight._net import describe
from preflight.context import ProbeContext
from preflight.dns import probe_dns
from preflight.http import probe_http
from preflight.kube import probe_kube
from preflight.options import ProbeOptions
from preflight.tcp import probe_tcp
from preflight.tls import probe_tls
from rules.model import Check, CheckKind, Observation, ProbeStatus
from rules.names import is_ip_address
from rules.plan import NodeResult, NodeState, Plan, check_id, result_of

Probe = Callable[[Check, ProbeContext, Sequence[str]], Awaitable[Observation]]
# Probes enforce `timeout` themselves, to report the right status; this is a safety net.
_BACKSTOP_S = 1.0


class EventKind(StrEnum):
    STARTED = "started"
    FINISHED = "finished"


@dataclass(frozen=True, slots=True)
class RunEvent:
    """A check started, or a node finished (ran, blocked, skipped; gates have no check)."""

    kind: EventKind
    node_id: str
    check: Check | None
    result: NodeResult | None = None
    observation: Observation | None = None


OnEvent = Callable[[RunEvent], None]


@dataclass(frozen=True, slots=True, repr=False)
class RunResult:
    """Observations of the checks that ran (blocked and skipped ones have none; the
    evaluation reconstructs them), every node's result, wall and CPU seconds."""

    observations: dict[str, Observation]
    results: dict[str, NodeResult]
    duration_s: float
    cpu_s: float

    def __repr__(self) -> str:
        # Short: asyncio.run formats its main task's result when it restores the SIGINT
        # handler, and the full repr of a thousand observations costs a tenth of a second.
        return (
            f"RunResult({len(self.observations)} observations, {len(self.results)} nodes, "
            f"{self.duration_s:.3f} s, {self.cpu_s:.3f} CPU-s)"
        )


def _probe_for(check: Check, plan: Plan) -> Probe | None:
    if check.kind is CheckKind.DNS:
        return probe_dns
    if check.kind is CheckKind.TCP:
        return probe_tcp
    if check.kind is CheckKind.TLS:
        return probe_tls
    if check.kind is CheckKind.HTTP:
        tls = check_id(CheckKind.TLS, check.target, check.port)
        if tls in plan.checks:
            return probe_http

        async def plain_http(c: Check, ctx: ProbeContext, a: Sequence[str]) -> Observation:
            return await probe_http(c, ctx, a, scheme="http")

        return plain_http
    if check.kind is CheckKind.KUBERNETES:
        return probe_kube
    return None


def addresses_for(check: Check, observations: dict[str, Observation]) -> list[str]:
    """What DNS found for the check's host (never another resolver), the address the
    previous step of the chain reached first."""
    if is_ip_address(check.target):
        return [check.target]
    found = observations.get(check_id(CheckKind.DNS, check.target))
    if found is None:
        return []
    addresses = [str(a) for a in found.evidence.get("addresses", ())]
    for kind in (CheckKind.TLS, CheckKind.TCP):
        previous = observations.get(check_id(kind, check.target, check.port))
        reached = previous.evidence.get("address") if previous else None
        if previous is not None and previous.status is ProbeStatus.OK and reached in addresses:
            addresses.remove(reached)
            return [reached, *addresses]
    return addresses


# Later steps of a chain go first: they finish what was started (and free the connection
# the step before left for them) before new endpoints are opened.
_DEPTH = {CheckKind.HTTP: 0, CheckKind.TLS: 1, CheckKind.TCP: 2, CheckKind.KUBERNETES: 1}


class _Run:
    def __init__(self, plan: Plan, options: ProbeOptions, on_event: OnEvent | None) -> None:
        self.plan = plan
        self.options = options
        self.on_event = on_event
        self.context = ProbeContext(options, plan.checks)
        self.done: dict[str, NodeResult] = {}
        self.observations: dict[str, Observation] = {}
        self.waiting = {node: plan.in_degree(node) for node in plan.nodes}
        self.runnable: list[tuple[int, int, str]] = []  # a heap: (depth, arrival, node)
        self.arrivals = itertools.count()
        self.running: dict[str, asyncio.Task[Observation]] = {}
        # Set when nothing runs or waits any more, or to the error that stops the run.
        self.over: asyncio.Future[None] | None = None
        self.run_started = 0.0  # set by run_plan from its own clock reading

    def emit(self, event: RunEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def release(self, nodes: Iterable[str]) -> None:
        """Decide each node whose prerequisites all finished: queue it, or settle it now
        (blocked, skipped, a gate) and go on with what waited on it."""
        pending = deque(nodes)
        while pending:
            node = pending.popleft()
            decision = self.plan.decide(node, self.done)
            if decision.state is NodeState.RUN:
                depth = _DEPTH.get(self.plan.checks[node].kind, 3)
                heapq.heappush(self.runnable, (depth, next(self.arrivals), node))
            else:
                pending.extend(self.settle(node, decision, None))

    def settle(self, node: str, result: NodeResult, observation: Observation | None) -> list[str]:
        """Record how `node` ended; return the dependants it was the last one to wait for."""
        self.done[node] = result
        if observation is not None:
            self.observations[node] = observation
            self.context.observations[node] = observation
        self.emit(
            RunEvent(EventKind.FINISHED, node, self.plan.checks.get(node), result, observation)
        )
        ready = []
        for dependant in self.plan.dependants(node):
            self.waiting[dependant] -= 1
            if self.waiting[dependant] == 0:
                ready.append(dependant)
        return ready

    async def probe(self, check: Check) -> Observation:
        """The check's observation, stamped with when it started (ms since the run began,
        `evidence["started_ms"]`) so reports can draw the real timeline."""
        started_ms = round((self.options.clock() - self.run_started) * 1000, 3)
        observation = await self._probe(check)
        evidence = observation.evidence
        if isinstance(evidence, dict):  # the probe's own, new dict
            evidence["started_ms"] = started_ms
            return observation
        return dataclasses.replace(observation, evidence={**evidence, "started_ms": started_ms})

    def finished(self, task: asyncio.Task[Observation]) -> None:
        """A check's task ended: settle it and start what that frees, right here in the
        task's done callback (no queue, no wake-up of a waiting coroutine per check)."""
        node = task.get_name()
        self.running.pop(node, None)
        if self.over is None or self.over.done() or task.cancelled():
            return
        try:
            observation = task.result()
            self.release(self.settle(node, result_of(observation), observation))
            self.start_runnable()
        except BaseException as exc:  # a probe's BaseException or an event handler's error
            self.over.set_exception(exc)
            return
        if not self.running:
            self.over.set_result(None)

    async def _probe(self, check: Check) -> Observation:
        probe = _probe_for(check, self.plan)
        if probe is None:
            return Observation(check.id, ProbeStatus.SKIPPED, 0.0, f"no {check.kind} probe here")
        addresses = addresses_for(check, self.observations)
        if check.kind in (CheckKind.TCP, CheckKind.TLS, CheckKind.HTTP) and not addresses:
            detail = f"no address for {check.target}: its DNS check did not answer"
            return Observation(check.id, ProbeStatus.ERROR, 0.0, detail)
        started = self.options.clock()
        try:
            async with asyncio.timeout(self.options.timeout + _BACKSTOP_S):
                return await probe(check, self.context, addresses)
        except TimeoutError:
            status = ProbeStatus.DNS_TIMEOUT if check.kind is CheckKind.DNS else ProbeStatus.TIMEOUT
            detail = f"no result within {self.options.timeout:g} s"
        except Exception as exc:  # a probe bug must not take the run down: record it
            status, detail = ProbeStatus.ERROR, describe(exc)
        duration_ms = (self.options.clock() - started) * 1000
        return Observation(check.id, status, duration_ms, detail)

    def start_runnable(self) -> None:
        while self.runnable and len(self.running) < self.options.concurrency:
            _, _, node = heapq.heappop(self.runnable)
            check = self.plan.checks[node]
            self.emit(RunEvent(EventKind.STARTED, node, check))
            task = asyncio.create_task(self.probe(check), name=node)
            self.running[node] = task
            task.add_done_callback(self.finished)

    async def run(self) -> None:
        if any(c.kind is CheckKind.KUBERNETES for c in self.plan.checks.values()) and (
            self.options.kubeconfig is not None or self.options.context is not None
        ):
            await self.context.kube_client()  # a bad explicit kubeconfig fails before probing
        self.over = asyncio.get_running_loop().create_future()
        self.release(n for n in self.plan.order() if self.waiting[n] == 0)
        self.start_runnable()
        if self.running:
            await self.over

    async def aclose(self) -> None:
        tasks = list(self.running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.running.clear()
        await self.context.aclose()


async def run_plan(
    plan: Plan, options: ProbeOptions, *, on_event: OnEvent | None = None
) -> RunResult:
    """Run every check of `plan` that may run; report each node to `on_event` as it ends."""
    started, cpu_started = options.clock(), time.process_time()
    run = _Run(plan, options, on_event)
    run.run_started = started
    try:
        await run.run()
    finally:
        await run.aclose()
    return RunResult(
        observations=run.observations,
        results=run.done,
        duration_s=options.clock() - started,
        cpu_s=time.process_time() - cpu_started,
    )
