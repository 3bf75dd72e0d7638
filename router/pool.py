"""A service's replicas, their free slots, and the FIFO queue of requests waiting for one.

Each replica takes at most `replica_max_concurrent_requests` requests at once; a request that
finds no free slot waits in the queue, in arrival order, for at most `max_request_wait_time`.
The pool also integrates its load (requests in flight plus queued) over time, so the
autoscaler sees the average over a refresh interval rather than one noisy sample.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from router.errors import NoReplicas, QueueTimeout

Clock = Callable[[], float]


@dataclass(eq=False)
class Replica:
    """One model-server replica; `url` is its base URL, e.g. http://10.0.0.5:5001."""

    url: str
    name: str = ""
    in_flight: int = 0
    in_rotation: bool = True
    removed: bool = False
    served: int = 0
    failures: int = 0
    retired_until: float = 0.0

    def __post_init__(self) -> None:
        self.name = self.name or self.url


@dataclass(frozen=True)
class PoolLoad:
    """A snapshot for metrics, peers and the autoscaler."""

    replicas: int
    ready: int
    busy: int
    in_flight: int
    queued: int
    capacity_per_replica: int


@dataclass(eq=False)
class _Waiter:
    future: asyncio.Future[Replica]
    exclude: frozenset[str]


@dataclass
class _LoadMeter:
    clock: Clock
    last_change: float = 0.0
    integral: float = 0.0
    current: int = 0
    window_start: float = field(default=0.0)

    def update(self, load: int) -> None:
        now = self.clock()
        self.integral += self.current * (now - self.last_change)
        self.last_change = now
        self.current = load

    def take_average(self) -> float:
        """Average load since the previous call (falls back to the current load)."""
        self.update(self.current)
        elapsed = self.last_change - self.window_start
        average = self.integral / elapsed if elapsed > 0 else float(self.current)
        self.integral = 0.0
        self.window_start = self.last_change
        return average


class ReplicaPool:
    """Hands out replica slots fairly: least-loaded replica first, waiting requests in order."""

    def __init__(
        self,
        capacity_per_replica: int = 1,
        clock: Clock = time.monotonic,
        on_removed: Callable[[str], None] | None = None,
    ) -> None:
        self.capacity = capacity_per_replica
        self._on_removed = on_removed
        self._clock = clock
        self._replicas: dict[str, Replica] = {}
        self._waiters: deque[_Waiter] = deque()
        self._in_flight = 0
        self._meter = _LoadMeter(clock, last_change=clock(), window_start=clock())
        self._cursor = 0

    # -- membership -------------------------------------------------------------------------

    @property
    def replicas(self) -> list[Replica]:
        return list(self._replicas.values())

    def set_replicas(self, urls: Iterable[str]) -> None:
        """Make the pool match discovery; removed replicas finish what they are serving."""
        wanted = list(dict.fromkeys(urls))
        for url in list(self._replicas):
            if url not in wanted:
                self.remove(url)
        for url in wanted:
            self._replicas.setdefault(url, Replica(url))
        self._wake()

    def add(self, url: str) -> Replica:
        replica = self._replicas.setdefault(url, Replica(url))
        self._wake()
        return replica

    def remove(self, url: str) -> None:
        replica = self._replicas.pop(url, None)
        if replica is not None:
            replica.removed = True
            if self._on_removed is not None:
                self._on_removed(url)

    def take_out_of_rotation(self, replica: Replica, retry_after: float) -> None:
        """A replica that refused or died gets no new requests until a health check passes."""
        replica.in_rotation = False
        replica.failures += 1
        replica.retired_until = self._clock() + retry_after

    def put_back(self, replica: Replica) -> None:
        replica.in_rotation = True
        self._wake()

    def out_of_rotation(self) -> list[Replica]:
        return [replica for replica in self._replicas.values() if not replica.in_rotation]

    # -- slots ------------------------------------------------------------------------------

    def _free_replica(self, exclude: frozenset[str]) -> Replica | None:
        best: Replica | None = None
        replicas = list(self._replicas.values())
        count = len(replicas)
        for offset in range(count):
            replica = replicas[(self._cursor + offset) % count]
            if not replica.in_rotation or replica.url in exclude:
                continue
            if replica.in_flight >= self.capacity:
                continue
            if best is None or replica.in_flight < best.in_flight:
                best = replica
                if replica.in_flight == 0:
                    break
        if best is not None:
            self._cursor = (self._cursor + 1) % max(count, 1)
        return best

    def _claim(self, replica: Replica) -> Replica:
        replica.in_flight += 1
        self._in_flight += 1
        self._meter.update(self._in_flight + len(self._waiters))
        return replica

    def try_acquire(self, exclude: frozenset[str] = frozenset()) -> Replica | None:
        if self._waiters:
            return None
        replica = self._free_replica(exclude)
        return self._claim(replica) if replica is not None else None

    async def acquire(self, wait_seconds: float, exclude: frozenset[str] = frozenset()) -> Replica:
        """A slot on a replica, waiting in FIFO order at most `wait_seconds`."""
        replica = self.try_acquire(exclude)
        if replica is not None:
            return replica
        if not any(url not in exclude for url in self._replicas):
            raise NoReplicas("no replica to send the request to")
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop.create_future(), exclude)
        self._waiters.append(waiter)
        self._meter.update(self._in_flight + len(self._waiters))
        timer = loop.call_later(wait_seconds, self._expire, waiter)
        try:
            return await waiter.future
        except asyncio.CancelledError:
            future = waiter.future
            if future.done() and not future.cancelled() and future.exception() is None:
                self.release(future.result())
            raise
        finally:
            timer.cancel()
            self._drop_waiter(waiter)

    def _drop_waiter(self, waiter: _Waiter) -> None:
        try:
            self._waiters.remove(waiter)
        except ValueError:
            return
        self._meter.update(self._in_flight + len(self._waiters))

    def _expire(self, waiter: _Waiter) -> None:
        if not waiter.future.done():
            waiter.future.set_exception(
                QueueTimeout("no replica slot within max_request_wait_time")
            )
        self._drop_waiter(waiter)

    def unclaim(self, replica: Replica) -> None:
        """Give back a slot that was never used (nothing reached the replica)."""
        replica.in_flight -= 1
        self._in_flight -= 1
        self._meter.update(self._in_flight + len(self._waiters))
        self._wake()

    def release(self, replica: Replica) -> None:
        replica.in_flight -= 1
        replica.served += 1
        self._in_flight -= 1
        self._meter.update(self._in_flight + len(self._waiters))
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters[0]
            if waiter.future.done():
                self._waiters.popleft()
                continue
            replica = self._free_replica(waiter.exclude)
            if replica is None:
                return
            self._waiters.popleft()
            self._claim(replica)
            waiter.future.set_result(replica)

    # -- load -------------------------------------------------------------------------------

    def load(self) -> PoolLoad:
        replicas = list(self._replicas.values())
        return PoolLoad(
            replicas=len(replicas),
            ready=sum(1 for r in replicas if r.in_rotation),
            busy=sum(1 for r in replicas if r.in_flight > 0),
            in_flight=self._in_flight,
            queued=len(self._waiters),
            capacity_per_replica=self.capacity,
        )

    def average_load(self) -> float:
        """Mean of (in flight + queued) since the last call; the autoscaler's input."""
        return self._meter.take_average()
