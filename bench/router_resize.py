"""Load through the router's own scaling: a rolling resize, a scale-in, a scale-out and an
in-place resize of local router processes, under constant load, with no failed request.

Starts, on loopback only, a fast backend (nginx `return 200`) and a fleet of router
processes (`router.selfscale_local.LocalRouterFleet`); clients send scoring requests to the
routers the fleet lists as ready (as kube-proxy follows the router Service's EndpointSlice).
Each change runs while the load goes on; the script prints, for the steady state before the
changes and for each change, the requests sent, the failed ones, and the latency (p50, p99,
max) of the requests that started during it. Exit code 1 if any request failed.

Usage: python bench/router_resize.py [--concurrency 16] [--steady 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.router_latency import free_port, nginx, stop, wait_http  # noqa: E402
from router.config import parse_config  # noqa: E402
from router.selfscale_local import LocalRouterFleet  # noqa: E402

PATH = "/api/v1/service/bench/score"
SETTLE = 1.0  # the latency "during" a change counts requests up to this long after it
BODY = json.dumps({"data": [[5.1, 3.5, 1.4, 0.2]]}).encode()


@dataclass
class Load:
    """Closed-loop clients over the fleet's listed routers; every outcome is kept."""

    fleet: LocalRouterFleet
    concurrency: int
    results: list[tuple[float, float, bool, str]] = field(default_factory=list)
    running: bool = True
    _next: int = 0

    def _endpoint(self) -> str:
        endpoints = self.fleet.endpoints
        self._next += 1
        return endpoints[self._next % len(endpoints)]

    async def _client(self, session: aiohttp.ClientSession) -> None:
        while self.running:
            started = time.perf_counter()
            url = self._endpoint() + PATH
            try:
                async with session.post(url, data=BODY) as answer:
                    await answer.read()
                    ok, why = answer.status == 200, str(answer.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                ok, why = False, type(exc).__name__
            self.results.append((started, time.perf_counter() - started, ok, why))

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await asyncio.gather(*(self._client(session) for _ in range(self.concurrency)))

    def between(self, start: float, end: float) -> list[tuple[float, float, bool, str]]:
        return [r for r in self.results if start <= r[0] < end]


def summary(name: str, rows: list[tuple[float, float, bool, str]], seconds: float) -> str:
    latencies = sorted(r[1] * 1000 for r in rows)
    failed = [r for r in rows if not r[2]]
    if not latencies:
        return f"{name:<26} no requests"
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    why = f"  ({', '.join(sorted({r[3] for r in failed}))})" if failed else ""
    return (
        f"{name:<26} {seconds:>6.2f} s {len(rows):>8} sent {len(failed):>5} failed"
        f"   p50 {statistics.median(latencies):6.2f} ms  p99 {p99:7.2f} ms"
        f"  max {latencies[-1]:7.2f} ms{why}"
    )


async def scenario(args: argparse.Namespace, root: Path, backend_url: str) -> int:
    base = parse_config(
        {
            "access_log": {"enabled": False},
            "reload_seconds": 0,
            "services": [
                {
                    "name": "bench",
                    "replicas": [backend_url],
                    "replica_max_concurrent_requests": 1000,
                }
            ],
        }
    )
    fleet = LocalRouterFleet(base, root / "fleet", drain_delay=args.drain_delay)
    await fleet.start(2, step=0)
    load = Load(fleet, args.concurrency)
    runner = asyncio.ensure_future(load.run())
    lines = []
    try:
        await asyncio.sleep(args.steady)
        start = time.perf_counter()
        await asyncio.sleep(args.steady)
        lines.append(
            summary("steady, 2 routers", load.between(start, time.perf_counter()), args.steady)
        )

        async def change(name: str, action: object) -> None:
            await asyncio.sleep(args.steady)
            began = time.perf_counter()
            await action  # type: ignore[misc]
            ended = time.perf_counter()
            await asyncio.sleep(SETTLE)
            rows = load.between(began, ended + SETTLE)
            lines.append(summary(name, rows, ended - began))

        fleet.resize_mode = "rolling"
        await change("rolling resize 0 -> 1", fleet.resize(1))
        await change("scale-in 2 -> 1", fleet.scale(1))
        await change("scale-out 1 -> 2", fleet.scale(2))
        fleet.resize_mode = "in-place"
        await change("in-place resize 1 -> 0", fleet.resize(0))
        await asyncio.sleep(args.steady)
    finally:
        load.running = False
        await runner
        await fleet.close()
    total = len(load.results)
    failed = sum(1 for r in load.results if not r[2])
    print(
        f"{args.concurrency} clients, closed loop, POST {len(BODY)} B; each change: its duration,"
        f" then the requests started from its beginning to {SETTLE:g} s after its end"
    )
    print("\n".join(lines))
    print(f"all: {total} requests sent, {failed} failed")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--steady", type=float, default=2.0, help="seconds between changes")
    parser.add_argument("--drain-delay", type=float, default=0.5)
    args = parser.parse_args()
    if shutil.which("nginx") is None:
        print("skipped: nginx is not installed")
        return 0
    root = Path(tempfile.mkdtemp(prefix="router-resize-"))
    port = free_port()
    backend = nginx(
        root,
        "backend",
        f"server {{ listen 127.0.0.1:{port}; "
        f"location / {{ default_type application/json; return 200 '{{\"ok\":true}}'; }} }}",
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/")
        return asyncio.run(scenario(args, root, f"http://127.0.0.1:{port}"))
    finally:
        stop(backend)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
