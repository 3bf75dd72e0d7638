"""The router's own figures, which its self-scaling reads: routing time and CPU use.

Routing time is the time a request waits for the router itself before the router gets to it:
the event loop's lag, sampled every `SAMPLE_SECONDS`. It is what grows when a router runs out
of CPU (requests wait in socket buffers while the loop works through the ones before them);
the time a request waits for a free replica is the model autoscaler's business and does not
count. CPU use is the process's user plus system time over wall time, in cores.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

SAMPLE_SECONDS = 0.05
WINDOW_SECONDS = 10.0
PERCENTILES = (50, 90, 95, 99)


@dataclass(frozen=True)
class RouterFigures:
    """One router's figures over the last window, as published at /-/load."""

    routing_ms: dict[int, float]
    cpu_cores: float
    window_seconds: float

    def to_json(self) -> dict[str, object]:
        return {
            "routing_ms": {f"p{p}": round(v, 3) for p, v in self.routing_ms.items()},
            "cpu_cores": round(self.cpu_cores, 4),
            "window_seconds": self.window_seconds,
        }

    @classmethod
    def from_json(cls, data: object) -> RouterFigures | None:
        """Figures read from a peer; None when the answer does not carry them."""
        if not isinstance(data, dict):
            return None
        try:
            routing = data["routing_ms"]
            return cls(
                {int(k.removeprefix("p")): float(v) for k, v in routing.items()},
                float(data["cpu_cores"]),
                float(data.get("window_seconds", WINDOW_SECONDS)),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def percentile(values: list[float], rank: int) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = max(0, math.ceil(rank / 100 * len(ordered)) - 1)
    return ordered[index]


class FigureSampler:
    """Samples loop lag and CPU time; `snapshot()` gives the figures over the last window."""

    def __init__(
        self,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        self.window = window
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._lags: deque[tuple[float, float]] = deque()
        self._cpu: deque[tuple[float, float]] = deque()
        self.record_cpu()

    def record_lag(self, lag_seconds: float) -> None:
        now = self._clock()
        self._lags.append((now, max(0.0, lag_seconds)))
        self._trim(self._lags, now)

    def record_cpu(self) -> None:
        now = self._clock()
        self._cpu.append((now, self._cpu_clock()))
        self._trim(self._cpu, now, keep=2)

    def _trim(self, samples: deque[tuple[float, float]], now: float, keep: int = 0) -> None:
        while len(samples) > keep and samples[0][0] < now - self.window:
            samples.popleft()

    def snapshot(self) -> RouterFigures:
        self.record_cpu()
        lags_ms = [lag * 1000 for _, lag in self._lags]
        (start, cpu_start), (end, cpu_end) = self._cpu[0], self._cpu[-1]
        cores = (cpu_end - cpu_start) / (end - start) if end > start else 0.0
        return RouterFigures(
            {p: percentile(lags_ms, p) for p in PERCENTILES}, max(0.0, cores), self.window
        )

    async def run(self) -> None:
        """Sleep SAMPLE_SECONDS again and again; how late each wake-up comes is the lag."""
        loop = asyncio.get_running_loop()
        ticks = 0
        while True:
            before = loop.time()
            await asyncio.sleep(SAMPLE_SECONDS)
            self.record_lag(loop.time() - before - SAMPLE_SECONDS)
            ticks += 1
            if ticks % 20 == 0:
                self.record_cpu()
