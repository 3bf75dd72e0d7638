"""The router scales itself: up and out by routing time, down and in by CPU.

`SelfScalingPolicy` is pure (samples and a clock in, decisions out) so recorded traces can be
replayed in tests; `SelfScaler` runs it every refresh on the coordinating router, against a
`RouterTarget` (the router Deployment in Kubernetes, or local router processes).

The rules, with the `self_scaling` settings:

- **up**: the routing time (the worst router's percentile) stayed over the threshold in
  every sample for `up_after_seconds` -> the next size step, if a node has room for it.
- **out**: it kept staying over for `out_after_seconds` (or the size is the largest) -> one
  router more, if a node has room for one. Either falls back on the other when only the other
  has room; with room for neither, one "blocked" decision is recorded for the episode.
- **down**: the busiest router's CPU use stayed under `down_cpu_percent` of its size for
  `down_after_seconds` -> the previous size step; **in**: at the smallest size, under
  `in_cpu_percent` for as long -> one router fewer (never below `min_replicas`).
- Hysteresis: a step down or in must leave the projected CPU use under
  `max_cpu_after_change_percent`; the low-CPU streaks restart after every change (the
  figures of the old size say nothing about the new one); `up_cooldown_seconds` and
  `down_cooldown_seconds` separate a change from the next. Noise around a threshold breaks
  the streaks, so it changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Literal, Protocol

from router.errors import RouterError
from router.figures import RouterFigures
from router.scaling_config import RouterSize, SelfScalingConfig

log = logging.getLogger(__name__)

Action = Literal["up", "out", "down", "in", "blocked"]
ACTIONS: tuple[Action, ...] = ("up", "out", "down", "in", "blocked")


@dataclass(frozen=True)
class Sample:
    """What the routers reported at one refresh."""

    time: float
    routing_ms: float  # the worst router's routing-time percentile
    cpu_percent: float  # the busiest router's CPU use, as a share of its CPU size
    routers: int


@dataclass(frozen=True)
class FleetState:
    """The routers as they are: size step (index into `sizes`) and replica count."""

    step: int
    replicas: int


class Room(Protocol):
    """Whether the nodes have room; each answers None (room) or why not."""

    def resize_blocker(self, size: RouterSize) -> str | None: ...

    def add_blocker(self, size: RouterSize) -> str | None: ...


@dataclass(frozen=True)
class ScalingDecision:
    time: float
    action: Action
    reason: str
    step_from: int
    step_to: int
    replicas_from: int
    replicas_to: int
    routing_ms: float
    cpu_percent: float

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def sample_from(
    now: float, figures: list[RouterFigures], size: RouterSize, percentile: int
) -> Sample | None:
    """Combine the routers' figures: the worst routing time, the busiest CPU."""
    if not figures:
        return None
    cores = size.cpu_millis / 1000
    return Sample(
        now,
        max(f.routing_ms.get(percentile, 0.0) for f in figures),
        max(100.0 * f.cpu_cores / cores for f in figures),
        len(figures),
    )


class SelfScalingPolicy:
    """Turns samples into decisions; keeps the streaks and the time of the last change."""

    def __init__(self, config: SelfScalingConfig) -> None:
        self.config = config
        self._over_since: float | None = None
        self._low_since: float | None = None
        self._very_low_since: float | None = None
        self._last_change: float | None = None
        self._blocked = False

    @staticmethod
    def _streak(since: float | None, now: float, holds: bool) -> float | None:
        if not holds:
            return None
        return now if since is None else since

    def observe(self, sample: Sample, state: FleetState, room: Room) -> ScalingDecision | None:
        config = self.config
        now = sample.time
        over = sample.routing_ms > config.routing_time_threshold_ms
        self._over_since = self._streak(self._over_since, now, over)
        low = not over and sample.cpu_percent < config.down_cpu_percent
        self._low_since = self._streak(self._low_since, now, low)
        very_low = not over and sample.cpu_percent < config.in_cpu_percent
        self._very_low_since = self._streak(self._very_low_since, now, very_low)
        if not over:
            self._blocked = False
        since_change = math.inf if self._last_change is None else now - self._last_change
        if over:
            return self._grow(sample, state, room, since_change)
        if since_change >= config.down_cooldown_seconds:
            return self._shrink(sample, state)
        return None

    def _change(
        self, sample: Sample, state: FleetState, action: Action, reason: str, **to: int
    ) -> ScalingDecision:
        if action != "blocked":
            self._last_change = sample.time
            self._low_since = self._very_low_since = None
            self._blocked = False
        return ScalingDecision(
            sample.time,
            action,
            reason,
            state.step,
            to.get("step", state.step),
            state.replicas,
            to.get("replicas", state.replicas),
            round(sample.routing_ms, 3),
            round(sample.cpu_percent, 1),
        )

    def _grow(
        self, sample: Sample, state: FleetState, room: Room, since_change: float
    ) -> ScalingDecision | None:
        config = self.config
        assert self._over_since is not None
        streak = sample.time - self._over_since
        if streak < config.up_after_seconds or since_change < config.up_cooldown_seconds:
            return None
        measured = (
            f"routing time p{config.routing_time_percentile} {sample.routing_ms:.1f} ms over "
            f"{config.routing_time_threshold_ms:g} ms for {streak:.0f} s"
        )
        can_up = state.step + 1 < len(config.sizes)
        can_out = state.replicas < config.max_replicas
        prefer_out = streak >= config.out_after_seconds or not can_up
        blockers = []
        for action in ("out", "up") if prefer_out else ("up", "out"):
            if action == "up" and can_up:
                bigger = config.sizes[state.step + 1]
                blocker = room.resize_blocker(bigger)
                if blocker is None:
                    reason = f"{measured}: up to {bigger.cpu} CPU, {bigger.memory}"
                    return self._change(sample, state, "up", reason, step=state.step + 1)
                blockers.append(f"up to {bigger.cpu} CPU: {blocker}")
            if action == "out" and can_out:
                size = config.sizes[state.step]
                blocker = room.add_blocker(size)
                if blocker is None:
                    reason = f"{measured}: out to {state.replicas + 1} routers"
                    return self._change(sample, state, "out", reason, replicas=state.replicas + 1)
                blockers.append(f"out to {state.replicas + 1}: {blocker}")
        if self._blocked:
            return None
        self._blocked = True
        why = "; ".join(blockers) or "at the largest size and max_replicas"
        return self._change(sample, state, "blocked", f"{measured}, but {why}")

    def _shrink(self, sample: Sample, state: FleetState) -> ScalingDecision | None:
        config = self.config
        now = sample.time
        size = config.sizes[state.step]
        if state.step > 0 and self._low_since is not None:
            if now - self._low_since < config.down_after_seconds:
                return None
            smaller = config.sizes[state.step - 1]
            projected = sample.cpu_percent * size.cpu_millis / smaller.cpu_millis
            if projected >= config.max_cpu_after_change_percent:
                return None
            reason = (
                f"CPU {sample.cpu_percent:.0f}% of {size.cpu} under {config.down_cpu_percent:g}% "
                f"for {now - self._low_since:.0f} s: down to {smaller.cpu} CPU, {smaller.memory} "
                f"(about {projected:.0f}% there)"
            )
            return self._change(sample, state, "down", reason, step=state.step - 1)
        if (
            state.step == 0
            and self._very_low_since is not None
            and state.replicas > config.min_replicas
            and now - self._very_low_since >= config.down_after_seconds
        ):
            projected = sample.cpu_percent * state.replicas / (state.replicas - 1)
            if projected >= config.max_cpu_after_change_percent:
                return None
            reason = (
                f"CPU {sample.cpu_percent:.0f}% of {size.cpu} under {config.in_cpu_percent:g}% "
                f"for {now - self._very_low_since:.0f} s at the smallest size: in to "
                f"{state.replicas - 1} routers (about {projected:.0f}% each)"
            )
            return self._change(sample, state, "in", reason, replicas=state.replicas - 1)
        return None


class RouterTarget(Protocol):
    """Where the routers run: reads their state and room, applies decisions."""

    async def state(self) -> tuple[FleetState, Room]: ...

    async def resize(self, step: int) -> str:
        """Apply size step `step` to every router; returns how ("in-place" or "rolling")."""
        ...

    async def scale(self, replicas: int) -> None: ...

    async def reconcile(self, step: int) -> None:
        """Bring routers that started at another size to `step` (after a roll or scale-out)."""
        ...

    async def record(self, decisions: list[ScalingDecision], figures: dict[str, object]) -> None:
        """Keep the last decisions and figures where `router status` reads them."""
        ...


FiguresSource = Callable[[], Awaitable[dict[str, RouterFigures]]]


class SelfScaler:
    """Runs the policy every refresh against a target; every decision is logged and counted."""

    def __init__(
        self,
        config: SelfScalingConfig,
        target: RouterTarget,
        figures: FiguresSource,
        *,
        active: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.policy = SelfScalingPolicy(config)
        self.target = target
        self._figures = figures
        self._active = active
        self._clock = clock
        self._sleep = sleep
        self.decisions: deque[ScalingDecision] = deque(maxlen=100)
        self.counts: dict[str, int] = dict.fromkeys(ACTIONS, 0)
        self.state: FleetState | None = None
        self.last_figures: dict[str, RouterFigures] = {}

    async def step(self) -> ScalingDecision | None:
        if not self._active():
            return None  # another router coordinates
        figures = await self._figures()
        state, room = await self.target.state()
        self.state = state
        self.last_figures = figures
        size = self.config.sizes[state.step]
        sample = sample_from(
            self._clock(), list(figures.values()), size, self.config.routing_time_percentile
        )
        if sample is None:
            return None
        decision = self.policy.observe(sample, state, room)
        if decision is None:
            await self.target.reconcile(state.step)
            return None
        self.decisions.append(decision)
        self.counts[decision.action] += 1
        level = logging.WARNING if decision.action == "blocked" else logging.INFO
        log.log(
            level,
            "router self-scaling %s: %s (size step %d -> %d, routers %d -> %d)",
            decision.action,
            decision.reason,
            decision.step_from,
            decision.step_to,
            decision.replicas_from,
            decision.replicas_to,
        )
        if decision.action in ("up", "down"):
            how = await self.target.resize(decision.step_to)
            log.info("router self-scaling: resized %s", how)
        elif decision.action in ("out", "in"):
            await self.target.scale(decision.replicas_to)
        await self.target.record(
            list(self.decisions), {name: f.to_json() for name, f in figures.items()}
        )
        return decision

    async def run(self) -> None:
        while True:
            await self._sleep(self.config.refresh_seconds)
            try:
                await self.step()
            except RouterError as exc:
                log.warning("router self-scaling: %s", exc)

    def status(self) -> dict[str, object]:
        """What /-/scaling answers: the state, the figures and the last decisions."""
        return {
            "state": asdict(self.state) if self.state else None,
            "sizes": [size.model_dump() for size in self.config.sizes],
            "figures": {name: f.to_json() for name, f in self.last_figures.items()},
            "decisions": [d.to_json() for d in self.decisions],
        }
