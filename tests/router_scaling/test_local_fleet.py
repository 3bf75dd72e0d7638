"""Local router processes scaled in and resized (rolling and in place) under load, with no
failed request: the fleet unlists a router before it drains."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx
import pytest

from router.config import parse_config
from router.scaling_config import SelfScalingConfig
from router.selfscale_local import LocalRouterFleet, cores_for
from router.status import fleet_status
from tests.router.router_support import backend, run

SCORE = "/api/v1/service/f/score"


async def _load(fleet: LocalRouterFleet, stop: asyncio.Event, outcomes: list[str]) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        turn = 0
        while not stop.is_set():
            turn += 1
            endpoints = fleet.endpoints
            url = endpoints[turn % len(endpoints)] + SCORE
            try:
                answer = await client.post(url, content=b'{"data": [1]}')
                outcomes.append(str(answer.status_code))
            except httpx.HTTPError as exc:
                outcomes.append(type(exc).__name__)


@pytest.mark.slow
def test_scale_in_and_resizes_under_load_fail_no_request(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with backend() as model:
            base = parse_config(
                {
                    "access_log": {"enabled": False},
                    "reload_seconds": 0,
                    "services": [
                        {
                            "name": "f",
                            "replicas": [model.url],
                            "replica_max_concurrent_requests": 64,
                        }
                    ],
                }
            )
            fleet = LocalRouterFleet(base, tmp_path / "fleet", drain_delay=0.3)
            await fleet.start(2)
            listed = json.loads((tmp_path / "fleet" / "endpoints.json").read_text())
            assert listed == {"routers": fleet.endpoints}
            shown = await asyncio.to_thread(fleet_status, tmp_path / "fleet")
            assert [r["name"] for r in shown["routers"]] == ["router-1", "router-2"]
            stop, outcomes = asyncio.Event(), []
            clients = [asyncio.ensure_future(_load(fleet, stop, outcomes)) for _ in range(6)]
            try:
                await asyncio.sleep(0.5)
                first = list(fleet.endpoints)
                fleet.resize_mode = "rolling"
                assert await fleet.resize(1) == "rolling"
                assert set(fleet.endpoints).isdisjoint(first)  # both replaced
                await asyncio.sleep(0.3)
                await fleet.scale(1)
                assert len(fleet.endpoints) == 1
                await asyncio.sleep(0.3)
                fleet.resize_mode = "in-place"
                pid = fleet.routers[0].process.pid
                assert await fleet.resize(0) == "in-place"
                assert os.sched_getaffinity(pid) == cores_for(SelfScalingConfig().sizes[0])
                await asyncio.sleep(0.3)
            finally:
                stop.set()
                await asyncio.gather(*clients)
                await fleet.close()
            assert len(outcomes) > 100
            assert set(outcomes) == {"200"}, sorted(set(outcomes))
            assert fleet.endpoints == []

    run(scenario())
