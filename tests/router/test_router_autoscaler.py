"""The autoscaler on load traces with a fake clock: formula, fast up, cautious down, no flapping."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from router.app import Service
from router.auth import AllowAll
from router.autoscaler import Autoscaler, ScalingPolicy
from router.config import AutoscaleConfig, ServiceConfig, parse_config
from router.peers import PeerSet
from router.pool import ReplicaPool
from tests.router.router_support import run

Trace = list[tuple[float, float]]  # (seconds at this level, average load)


def _simulate(
    trace: Trace, start: int, config: AutoscaleConfig | None = None, capacity: int = 1
) -> list[tuple[float, int, float]]:
    """(time, replicas after the decision, load) at every refresh; scaling takes effect at once."""
    config = config or AutoscaleConfig()
    policy = ScalingPolicy(config, capacity)
    now, replicas, timeline = 0.0, start, []
    for seconds, load in trace:
        for _ in range(round(seconds / config.refresh_seconds)):
            now += config.refresh_seconds
            replicas = policy.decide(now, replicas, load).desired
            timeline.append((now, replicas, load))
    return timeline


def _replicas_at(timeline: list[tuple[float, int, float]], when: float) -> int:
    return next(replicas for now, replicas, _ in timeline if now >= when)


@pytest.mark.parametrize(
    ("current", "load", "capacity", "expected"),
    [
        (1, 0.0, 1, 1),  # never below min_replicas
        (1, 1.0, 1, 2),  # 100 % > 70 %: ceil(1 / 0.7) = 2
        (4, 7.0, 1, 10),  # ceil(7 / 0.7) = 10
        (4, 20.0, 1, 10),  # never above max_replicas
        (10, 7.3, 1, 10),  # 73 % is within the 10 % tolerance band around 70 %
        (10, 2.1, 1, 3),
        (2, 5.6, 4, 2),  # 4 slots per replica: 5.6 / 8 = 70 %
        (2, 8.4, 4, 3),  # ceil(8.4 / 2.8) = 3
    ],
)
def test_formula(current: int, load: float, capacity: int, expected: int) -> None:
    wanted, _ = ScalingPolicy(AutoscaleConfig(), capacity).wanted(current, load)
    assert wanted == expected


def test_step_up_is_decided_within_one_refresh() -> None:
    timeline = _simulate([(30, 0.5), (30, 5.0)], start=1)
    assert _replicas_at(timeline, 30) == 1
    assert _replicas_at(timeline, 31) == math.ceil(5.0 / 0.7) == 8


def test_step_down_waits_for_the_cautious_delay() -> None:
    timeline = _simulate([(120, 7.0), (120, 1.4)], start=10)
    assert _replicas_at(timeline, 120) == 10
    assert _replicas_at(timeline, 179) == 10
    assert _replicas_at(timeline, 181) == 2
    assert {replicas for now, replicas, _ in timeline if 121 <= now < 180} == {10}


def test_a_spike_scales_up_at_once_and_back_down_a_minute_later() -> None:
    timeline = _simulate([(20, 0.5), (2, 6.0), (120, 0.5)], start=1)
    assert _replicas_at(timeline, 21) == 9
    assert _replicas_at(timeline, 81) == 9
    assert _replicas_at(timeline, 84) == 1
    changes = sum(1 for a, b in itertools.pairwise(timeline) if a[1] != b[1])
    assert changes == 2


def test_steady_load_near_the_target_never_oscillates() -> None:
    noise = random.Random(7)
    trace = [(1, 3.5 + noise.uniform(-0.3, 0.3)) for _ in range(600)]
    timeline = _simulate(trace, start=5)
    assert {replicas for _, replicas, _ in timeline} == {5}


def test_steady_noisy_load_without_tolerance_only_steps_up_never_flaps() -> None:
    noise = random.Random(11)
    trace = [(1, 3.5 + noise.uniform(-0.6, 0.6)) for _ in range(600)]
    timeline = _simulate(trace, start=5, config=AutoscaleConfig(tolerance=0))
    counts = [replicas for _, replicas, _ in timeline]
    decreases = sum(1 for a, b in itertools.pairwise(counts) if b < a)
    assert decreases == 0
    assert max(counts) == math.ceil(max(load for _, load in trace) / 0.7)


def test_no_scale_down_in_the_first_delay_after_start() -> None:
    timeline = _simulate([(90, 0.1)], start=6)
    assert _replicas_at(timeline, 59) == 6
    assert _replicas_at(timeline, 61) == 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeScaler:
    def __init__(self, replicas: int) -> None:
        self.replicas = replicas
        self.calls: list[int] = []

    async def prepare(self, service: Service) -> None:
        return None

    async def get_replicas(self, service: Service) -> int:
        return self.replicas

    async def set_replicas(self, service: Service, replicas: int) -> None:
        self.calls.append(replicas)
        self.replicas = replicas

    async def close(self) -> None:
        return None


def _service(clock: FakeClock, replicas: int) -> Service:
    config = ServiceConfig(name="m", autoscale=AutoscaleConfig(enabled=True))
    pool = ReplicaPool(1, clock=clock)
    pool.set_replicas([f"http://127.0.0.1:{9000 + i}" for i in range(replicas)])
    return Service(config, pool, AllowAll())


def test_autoscaler_reads_time_averaged_pool_load_and_logs_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        service = _service(clock, 4)
        scaler = FakeScaler(4)
        autoscaler = Autoscaler(
            service, scaler, ScalingPolicy(service.config.autoscale, 1), clock=clock
        )
        held = [service.pool.try_acquire() for _ in range(4)]
        clock.now = 0.5
        for replica in held[:2]:
            assert replica is not None
            service.pool.release(replica)
        clock.now = 1.0
        decision = await autoscaler.step()
        assert decision is not None
        assert decision.utilisation == pytest.approx(75.0)  # (4 * 0.5 + 2 * 0.5) / 4 replicas
        assert scaler.calls == []  # 75 % is within tolerance of 70 %
        extra = [service.pool.try_acquire() for _ in range(2)]
        assert all(extra)
        clock.now = 2.0
        decision = await autoscaler.step()
        assert decision is not None and decision.desired == 6  # load 4 / 0.7 -> 6
        assert scaler.calls == [6]

    with caplog.at_level("INFO", logger="router.autoscaler"):
        run(scenario())
    assert "utilisation above target" in caplog.text
    assert "4 -> 6" in caplog.text
    assert "target 70%" in caplog.text


def test_only_the_coordinating_router_scales_and_it_counts_peer_load() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        coordinator_peers = PeerSet("router-a", clock=clock)
        coordinator_peers.record("router-b", {"m": 3.0})
        follower_peers = PeerSet("router-b", clock=clock)
        follower_peers.record("router-a", {"m": 0.0})
        lead = Autoscaler(
            _service(clock, 1),
            (lead_scaler := FakeScaler(1)),
            ScalingPolicy(AutoscaleConfig(enabled=True), 1),
            peers=coordinator_peers,
            clock=clock,
        )
        follow = Autoscaler(
            _service(clock, 1),
            (follow_scaler := FakeScaler(1)),
            ScalingPolicy(AutoscaleConfig(enabled=True), 1),
            peers=follower_peers,
            clock=clock,
        )
        clock.now = 1.0
        assert await follow.step() is None
        decision = await lead.step()
        assert decision is not None and decision.desired == math.ceil(3.0 / 0.7)
        assert lead_scaler.calls == [5]
        assert follow_scaler.calls == []
        clock.now = 10.0  # router-a's figures are stale now: router-b takes over
        assert follower_peers.is_coordinator()

    run(scenario())


def test_disabled_on_devtest_and_when_autoscale_is_off() -> None:
    config = parse_config(
        {
            "cluster_purpose": "DevTest",
            "services": [{"name": "m", "autoscale": {"enabled": True}}],
        }
    )
    clock = FakeClock()
    service = _service(clock, 1)
    peers = PeerSet("router-0")
    assert Autoscaler.for_service(service, FakeScaler(1), config, peers, "router-0") is None
    prod = parse_config({"services": [{"name": "m"}]})
    assert Autoscaler.for_service(service, FakeScaler(1), prod, peers, "router-0") is not None
    off = Service(ServiceConfig(name="m"), ReplicaPool(), AllowAll())
    assert Autoscaler.for_service(off, FakeScaler(1), prod, peers, "router-0") is None
