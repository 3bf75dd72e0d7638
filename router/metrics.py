"""Prometheus metrics: counters and a latency histogram per request, pool gauges at scrape time.

Gauges (queue depth, in flight per replica, replicas ready/desired) are read from the pools
when /metrics is scraped, so the request path only pays for one counter and one histogram.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from router.pool import ReplicaPool

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


class RouterMetrics:
    """One registry per router instance, so tests and several routers never share counters."""

    def __init__(
        self,
        pools: Callable[[], Mapping[str, ReplicaPool]],
        desired: Callable[[], Mapping[str, int]],
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "router_requests",
            "Scoring requests by service and status code",
            ["service", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "router_request_duration_seconds",
            "Time from request received to response finished",
            ["service"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.retries = Counter(
            "router_replica_retries",
            "Requests sent again because a replica refused or died",
            ["service"],
            registry=self.registry,
        )
        self.registry.register(_PoolCollector(pools, desired))
        # Label lookups cost more than the update itself; keep the children at hand.
        self._counters: dict[tuple[str, int], Counter] = {}
        self._histograms: dict[str, Histogram] = {}

    def observe(self, service: str, status: int, seconds: float) -> None:
        counter = self._counters.get((service, status))
        if counter is None:
            counter = self._counters[(service, status)] = self.requests.labels(service, str(status))
        histogram = self._histograms.get(service)
        if histogram is None:
            histogram = self._histograms[service] = self.latency.labels(service)
        counter.inc()
        histogram.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
