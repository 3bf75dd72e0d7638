"""Prometheus metrics: counters and a latency histogram per request, pool gauges at scrape time.

The request path only adds to plain integers (one process, one event loop: no locks needed);
prometheus_client turns them, and the pool gauges (queue depth, in flight per replica,
replicas ready/desired), into the exposition format when /metrics is scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from router.figures import RouterFigures
from router.native import select_build
from router.pool import ReplicaPool

if TYPE_CHECKING:
    from router.selfscale import SelfScaler

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _PoolCollector(Collector):
    def __init__(
        self,
        pools: Callable[[], Mapping[str, ReplicaPool]],
        desired: Callable[[], Mapping[str, int]],
    ) -> None:
        self._pools = pools
        self._desired = desired

    def collect(self) -> Iterator[Metric]:
        queue = GaugeMetricFamily(
            "router_queue_depth", "Requests waiting for a replica slot", labels=["service"]
        )
        in_flight = GaugeMetricFamily(
            "router_replica_in_flight",
            "Requests being served by each replica",
            labels=["service", "replica"],
        )
        ready = GaugeMetricFamily(
            "router_replicas_ready", "Replicas in rotation", labels=["service"]
        )
        desired = GaugeMetricFamily(
            "router_replicas_desired", "Replicas the autoscaler asked for", labels=["service"]
        )
        for service, pool in self._pools().items():
            load = pool.load()
            queue.add_metric([service], load.queued)
            ready.add_metric([service], load.ready)
            for replica in pool.replicas:
                in_flight.add_metric([service, replica.name], replica.in_flight)
        for service, count in self._desired().items():
            desired.add_metric([service], count)
        yield from (queue, in_flight, ready, desired)


class RequestStats(Collector):
    """Requests by (service, code) and a latency histogram per service, as plain numbers."""

    def __init__(self) -> None:
        self.fast_path = 0
        self.counts: dict[tuple[str, int], int] = {}
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}

    def observe(self, service: str, status: int, seconds: float) -> None:
        key = (service, status)
        self.counts[key] = self.counts.get(key, 0) + 1
        buckets = self.buckets.get(service)
        if buckets is None:
            buckets = self.buckets[service] = [0] * (len(LATENCY_BUCKETS) + 1)
            self.sums[service] = 0.0
        buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.sums[service] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "router_requests",
            "Scoring requests by service and status code",
            labels=["service", "code"],
        )
        for (service, status), count in sorted(self.counts.items()):
            requests.add_metric([service, str(status)], count)
        latency = HistogramMetricFamily(
            "router_request_duration_seconds",
            "Time from request received to response finished",
            labels=["service"],
        )
        for service, counts in sorted(self.buckets.items()):
            cumulative, total = [], 0
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), counts, strict=True):
                total += count
                cumulative.append((_bound(bound), total))
            latency.add_metric([service], cumulative, self.sums[service])
        fast = CounterMetricFamily(
            "router_fast_path_requests",
            "Scoring requests answered from protocol callbacks, without a coroutine",
        )
        fast.add_metric([], self.fast_path)
        build = select_build()
        info = GaugeMetricFamily(
            "router_data_plane_compiled",
            "1 when the request path runs compiled with mypyc, 0 for plain Python (why: label)",
            labels=["reason"],
        )
        info.add_metric([build.reason], 1 if build.compiled else 0)
        yield from (requests, latency, fast, info)


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(float(value))


class RouterMetrics:
    """One registry per router instance, so tests and several routers never share counters."""

    def __init__(
        self,
        pools: Callable[[], Mapping[str, ReplicaPool]],
        desired: Callable[[], Mapping[str, int]],
    ) -> None:
        self.registry = CollectorRegistry()
        # Counted into directly by the request path (router.fastpath counts `fast_path`).
        self.stats = RequestStats()
        self.registry.register(self.stats)
        self.observe = self.stats.observe
        self.retries = Counter(
            "router_replica_retries",
            "Requests sent again because a replica refused or died",
            ["service"],
            registry=self.registry,
        )
        self.registry.register(_PoolCollector(pools, desired))

    @property
    def fast_path(self) -> int:
        return self.stats.fast_path

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ScalingCollector(Collector):
    """The router's own figures (every router) and its self-scaling (the coordinator)."""

    def __init__(
        self,
        figures: Callable[[], RouterFigures | None],
        scaler: Callable[[], SelfScaler | None],
    ) -> None:
        self._figures = figures
        self._scaler = scaler

    def collect(self) -> Iterator[Metric]:
        figures = self._figures()
        if figures is not None:
            routing = GaugeMetricFamily(
                "router_routing_time_seconds",
                "Time requests wait for this router itself (event-loop lag), by percentile",
                labels=["percentile"],
            )
            for rank, value in sorted(figures.routing_ms.items()):
                routing.add_metric([str(rank)], value / 1000)
            yield routing
            yield GaugeMetricFamily(
                "router_cpu_cores", "CPU this router used, in cores", value=figures.cpu_cores
            )
        scaler = self._scaler()
        if scaler is None:
            return
        decisions = CounterMetricFamily(
            "router_self_scaling_decisions",
            "The router's own scaling decisions, by action",
            labels=["action"],
        )
        for action, count in scaler.counts.items():
            decisions.add_metric([action], count)
        yield decisions
        if scaler.state is not None:
            yield GaugeMetricFamily(
                "router_self_scaling_size_step",
                "Size step of the routers (index into self_scaling.sizes)",
                value=scaler.state.step,
            )
            yield GaugeMetricFamily(
                "router_self_scaling_replicas", "Router replicas", value=scaler.state.replicas
            )
