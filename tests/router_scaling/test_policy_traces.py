"""The self-scaling policy replayed on recorded traces with a fake clock (one sample per 10 s).

Each trace asserts the exact decisions and their order: (time, action, size step from -> to,
routers from -> to). Some traces are lists of measurements as recorded; others come from a
small model of a fleet (routing time grows once the routers' CPU is more than 70 % used), so
that a decision changes what is measured next, as it would in a cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from router.scaling_config import RouterSize, SelfScalingConfig
from router.selfscale import FleetState, Sample, ScalingDecision, SelfScalingPolicy

DEFAULTS = SelfScalingConfig()
STEP = 10.0


@dataclass
class FakeRoom:
    """Room for anything up to `max_cpu_millis` per pod, and `free_pods` more pods."""

    max_cpu_millis: int = 64_000
    free_pods: int = 100

    def resize_blocker(self, size: RouterSize) -> str | None:
        if size.cpu_millis > self.max_cpu_millis:
            return f"no node has {size.cpu} CPU free"
        return None

    def add_blocker(self, size: RouterSize) -> str | None:
        return None if self.free_pods > 0 else "no node has room for another router"


Row = tuple[float, str, int, int, int, int]


def _row(decision: ScalingDecision) -> Row:
    return (
        decision.time,
        decision.action,
        decision.step_from,
        decision.step_to,
        decision.replicas_from,
        decision.replicas_to,
    )


def _apply(state: FleetState, decision: ScalingDecision) -> FleetState:
    return FleetState(decision.step_to, decision.replicas_to)


def replay(
    measurements: Iterable[tuple[float, float]],
    state: FleetState,
    room: FakeRoom | None = None,
    config: SelfScalingConfig = DEFAULTS,
) -> list[Row]:
    """Recorded (routing ms, CPU %) pairs, one per refresh from t = 0."""
    policy = SelfScalingPolicy(config)
    rows = []
    for index, (routing, cpu) in enumerate(measurements):
        decision = policy.observe(
            Sample(index * STEP, routing, cpu, state.replicas), state, room or FakeRoom()
        )
        if decision is not None:
            rows.append(_row(decision))
            state = _apply(state, decision)
    return rows


def simulate(
    demand_cores: Callable[[float], float],
    state: FleetState,
    seconds: float,
    room: FakeRoom | None = None,
    config: SelfScalingConfig = DEFAULTS,
) -> tuple[list[Row], FleetState]:
    """A fleet under `demand_cores(t)` of routing work, spread evenly over the routers."""
    policy = SelfScalingPolicy(config)
    rows = []
    t = 0.0
    while t <= seconds:
        capacity = state.replicas * config.sizes[state.step].cpu_millis / 1000
        used = demand_cores(t) / capacity
        routing = 2.0 if used < 0.7 else 2.0 + 100.0 * (used - 0.7)
        sample = Sample(t, routing, min(100.0, 100.0 * used), state.replicas)
        decision = policy.observe(sample, state, room or FakeRoom())
        if decision is not None:
            rows.append(_row(decision))
            state = _apply(state, decision)
        t += STEP
    return rows, state


def test_a_routing_time_spike_shorter_than_up_after_changes_nothing() -> None:
    calm, spike = (3.0, 40.0), (80.0, 95.0)
    trace = [calm] * 10 + [spike] * 3 + [calm] * 20 + [spike] * 3 + [calm] * 10
    assert replay(trace, FleetState(0, 2)) == []


def test_sustained_overload_goes_up_first_then_out_until_routing_time_recovers() -> None:
    rows, final = simulate(lambda t: 6.0, FleetState(0, 2), seconds=600)
    assert rows == [
        (30.0, "up", 0, 1, 2, 2),  # over the threshold for up_after_seconds
        (90.0, "up", 1, 2, 2, 2),  # still over once the cool-down passed
        (150.0, "out", 2, 2, 2, 3),  # kept over for out_after_seconds: out
        (210.0, "out", 2, 2, 3, 4),  # 8 cores for 6 of work: 75 % used, under the threshold
    ]
    assert final == FleetState(2, 4)


def test_overload_that_a_bigger_size_absorbs_never_scales_out() -> None:
    rows, final = simulate(lambda t: 3.0, FleetState(0, 2), seconds=900)
    assert rows == [(30.0, "up", 0, 1, 2, 2), (90.0, "up", 1, 2, 2, 2)]
    assert final == FleetState(2, 2)


def test_at_the_largest_size_it_scales_out_at_once() -> None:
    rows, _ = simulate(lambda t: 40.0, FleetState(3, 2), seconds=200)
    assert rows == [
        (30.0, "out", 3, 3, 2, 3),
        (90.0, "out", 3, 3, 3, 4),
        (150.0, "out", 3, 3, 4, 5),
    ]


def test_falling_cpu_goes_down_step_by_step_then_in_and_stops_at_min_replicas() -> None:
    rows, final = simulate(lambda t: 0.15, FleetState(2, 3), seconds=2000)
    assert rows == [
        (300.0, "down", 2, 1, 3, 3),  # 2.5 % of 2 CPU for down_after_seconds
        (610.0, "down", 1, 0, 3, 3),  # streak restarted after the change at 300 s
        (920.0, "in", 0, 0, 3, 2),  # smallest size, 10 % < in_cpu_percent for as long
    ]
    assert final == FleetState(0, 2)  # min_replicas


def test_load_returning_during_the_down_streak_keeps_the_size() -> None:
    def demand(t: float) -> float:
        return 0.15 if t < 200 or t > 260 else 3.5  # a burst within the low streak

    rows, _ = simulate(demand, FleetState(2, 3), seconds=400)
    assert rows == []  # the burst broke the streak; 300 s have not passed again since


def test_noise_around_the_thresholds_never_scales() -> None:
    threshold = DEFAULTS.routing_time_threshold_ms
    routing_noise = [threshold + (1.5 if i % 2 else -1.5) for i in range(100)]
    cpu_noise = [DEFAULTS.down_cpu_percent + (4.0 if i % 3 == 0 else -4.0) for i in range(100)]
    assert replay(zip(routing_noise, cpu_noise, strict=True), FleetState(1, 3)) == []
    mostly_over = [threshold + (-0.5 if i % 3 == 2 else 3.0) for i in range(100)]
    assert replay(((r, 50.0) for r in mostly_over), FleetState(1, 3)) == []


def test_no_room_is_recorded_once_and_the_change_follows_when_room_appears() -> None:
    room = FakeRoom(max_cpu_millis=500, free_pods=0)
    policy = SelfScalingPolicy(DEFAULTS)
    state = FleetState(0, 2)
    rows = []
    for index in range(40):
        t = index * STEP
        if t == 200:
            room.max_cpu_millis = 1000  # a node was added
        decision = policy.observe(Sample(t, 60.0, 100.0, 2), state, room)
        if decision is not None:
            rows.append((*_row(decision), decision.reason))
            state = _apply(state, decision)
    assert [row[:6] for row in rows] == [
        (30.0, "blocked", 0, 0, 2, 2),
        (200.0, "up", 0, 1, 2, 2),
        (260.0, "blocked", 1, 1, 2, 2),  # room for 1 CPU, not 2, and no pod more
    ]
    assert "no node has 1 CPU free" in rows[0][6]
    assert "no node has room for another router" in rows[0][6]
    assert "no node has 2 CPU free" in rows[2][6]


def test_no_room_for_a_bigger_size_falls_back_on_one_router_more() -> None:
    rows, _ = simulate(lambda t: 1.6, FleetState(0, 2), seconds=100, room=FakeRoom(500, 5))
    assert rows == [(30.0, "out", 0, 0, 2, 3), (90.0, "out", 0, 0, 3, 4)]


def test_a_step_down_that_would_run_too_hot_is_not_taken() -> None:
    config = SelfScalingConfig(max_cpu_after_change_percent=50)
    assert replay([(3.0, 28.0)] * 60, FleetState(1, 2), config=config) == []
    assert replay([(3.0, 24.0)] * 60, FleetState(1, 2), config=config) == [
        (300.0, "down", 1, 0, 2, 2)
    ]


def test_cool_down_after_scaling_out_holds_a_scale_in() -> None:
    config = SelfScalingConfig(min_replicas=1)
    over, idle = (50.0, 100.0), (1.0, 5.0)
    trace = [over] * 4 + [idle] * 60
    assert replay(trace, FleetState(3, 1), config=config) == [
        (30.0, "out", 3, 3, 1, 2),
        (40.0 + 300.0, "down", 3, 2, 2, 2),  # cool-down from 30 s; low streak from 40 s
    ]
