"""The per-service autoscaler, as Azure ML v1 documents it, with a pure, clock-driven policy.

Load is the time-averaged number of requests in flight plus queued, over one refresh interval
(queued requests count: a replica with a queue behind it is more than fully used). With
capacity c = replica_max_concurrent_requests and target t (percent):

    utilisation = 100 * load / (current * c)
    wanted      = ceil(load / (c * t / 100)), clamped to [min_replicas, max_replicas]

Within the tolerance band (|utilisation / t - 1| <= tolerance) the count stays. Scaling up is
immediate (the next refresh); scaling down uses the largest `wanted` of the last
`scale_down_delay_seconds`, so the count drops only after load stayed low for that long, and a
load wobbling around the target never makes the count oscillate.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from router.config import AutoscaleConfig, ClusterPurpose, RouterConfig
from router.errors import ScalerError
from router.scalers import Scaler

if TYPE_CHECKING:
    from router.app import Service
    from router.peers import PeerSet

__all__ = ["Autoscaler", "Decision", "ScalingPolicy"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    time: float
    current: int
    desired: int
    utilisation: float
    target: int
    reason: str

    @property
    def changes(self) -> bool:
        return self.desired != self.current


class ScalingPolicy:
    """Turns (time, current replicas, average load) into a replica count; no I/O."""

    def __init__(self, config: AutoscaleConfig, capacity_per_replica: int) -> None:
        self.config = config
        self.capacity = capacity_per_replica
        self._history: deque[tuple[float, int]] = deque()
        self._started: float | None = None

    def wanted(self, current: int, load: float) -> tuple[int, float]:
        config = self.config
        utilisation = 100.0 * load / (current * self.capacity) if current else math.inf
        if current and abs(utilisation / config.target_utilization - 1) <= config.tolerance:
            raw = current
        else:
            raw = math.ceil(load / (self.capacity * config.target_utilization / 100) - 1e-9)
        return max(config.min_replicas, min(config.max_replicas, raw)), utilisation

    def decide(self, now: float, current: int, load: float) -> Decision:
        config = self.config
        if self._started is None:
            self._started = now
        wanted, utilisation = self.wanted(current, load)
        self._history.append((now, wanted))
        window_start = now - config.scale_down_delay_seconds
        while self._history and self._history[0][0] < window_start:
            self._history.popleft()
        shown = 0.0 if math.isinf(utilisation) else round(utilisation, 1)
        target = config.target_utilization
        if wanted > current:
            return Decision(now, current, wanted, shown, target, "utilisation above target")
        if wanted < current:
            if now - self._started < config.scale_down_delay_seconds:
                return Decision(now, current, current, shown, target, "below target; waiting")
            stable = max(count for _, count in self._history)
            if stable < current:
                return Decision(
                    now,
                    current,
                    stable,
                    shown,
                    target,
                    f"below target for {config.scale_down_delay_seconds:g} s",
                )
            return Decision(now, current, current, shown, target, "below target; waiting")
        return Decision(now, current, current, shown, target, "at target")


class Autoscaler:
    """Samples a service's load every refresh; the coordinating router applies decisions."""

    def __init__(
        self,
        service: Service,
        scaler: Scaler,
        policy: ScalingPolicy,
        *,
        peers: PeerSet | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.service = service
        self.scaler = scaler
        self.policy = policy
        self.peers = peers
        self.decisions: deque[Decision] = deque(maxlen=1000)
        self._clock = clock
        self._sleep = sleep

    @classmethod
    def for_service(
        cls, service: Service, scaler: Scaler, config: RouterConfig, peers: PeerSet, name: str
    ) -> Autoscaler | None:
        settings = service.config.autoscale
        if not settings.enabled:
            return None
        if config.cluster_purpose is ClusterPurpose.DEV_TEST:
            log.info("autoscaling of %s disabled: DevTest cluster", service.config.name)
            return None
        policy = ScalingPolicy(settings, service.config.replica_max_concurrent_requests)
        return cls(service, scaler, policy, peers=peers)

    async def step(self) -> Decision | None:
        name = self.service.config.name
        own = self.service.pool.average_load()
        self.service.extra["average_load"] = own
        if self.peers is not None and not self.peers.is_coordinator():
            return None
        load = own + (self.peers.load_of(name) if self.peers is not None else 0.0)
        current = await self.scaler.get_replicas(self.service)
        decision = self.policy.decide(self._clock(), current, load)
        self.decisions.append(decision)
        self.service.desired_replicas = decision.desired
        level = logging.INFO if decision.changes else logging.DEBUG
        log.log(
            level,
            "autoscale %s: %s (utilisation %.1f%%, target %d%%, load %.2f): %d -> %d",
            name,
            decision.reason,
            decision.utilisation,
            decision.target,
            load,
            decision.current,
            decision.desired,
        )
        if decision.changes:
            await self.scaler.set_replicas(self.service, decision.desired)
        return decision

    async def run(self) -> None:
        refresh = self.policy.config.refresh_seconds
        while True:
            await self._sleep(refresh)
            try:
                await self.step()
            except ScalerError as exc:
                log.warning("autoscale %s: %s", self.service.config.name, exc)
