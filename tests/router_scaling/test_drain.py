"""Stopping a router loses no request: readiness off first, still serving through the drain
delay with `connection: close`, what is in flight finished, then the listener is gone."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from router.config import parse_config
from router.server import RouterServer
from tests.router.router_support import backend, router_config, run

SCORE = "/api/v1/service/d/score"


def test_stop_turns_readiness_off_serves_through_the_delay_and_finishes_in_flight() -> None:
    async def scenario() -> None:
        async with backend() as model:
            config = router_config(
                [{"name": "d", "replicas": [model.url], "replica_max_concurrent_requests": 4}],
                drain_delay_seconds=0.4,
            )
            server = RouterServer(parse_config(config))
            await server.start()
            base = server.base_url
            async with (
                httpx.AsyncClient(base_url=base) as early,
                httpx.AsyncClient(base_url=base) as late,
            ):
                assert (await early.post(SCORE, content=b"{}")).status_code == 200
                slow = asyncio.ensure_future(early.post(SCORE + "?delay=0.8", content=b"{}"))
                await asyncio.sleep(0.1)  # the slow request is at the replica
                stopping = asyncio.ensure_future(server.stop())
                await asyncio.sleep(0.05)
                assert (await late.get("/readyz")).status_code == 503
                during = await late.post(SCORE, content=b"{}")  # a client that did not notice
                assert during.status_code == 200
                assert during.headers["connection"] == "close"
                answer = await slow
                assert answer.status_code == 200
                await stopping
                assert stopping.done()
                with pytest.raises(httpx.ConnectError):
                    await late.post(SCORE, content=b"{}")
                assert model.hits == 3

    run(scenario())


def test_the_grace_defaults_to_the_longest_scoring_timeout() -> None:
    config = parse_config(
        router_config(
            [{"name": "a", "scoring_timeout_ms": 1500}, {"name": "b", "scoring_timeout_ms": 90_000}]
        )
    )
    assert config.shutdown_grace == 90.0
    assert parse_config({}).shutdown_grace == 1.0
    assert parse_config({"shutdown_grace_seconds": 3}).shutdown_grace == 3.0
    assert parse_config({}).drain_delay == 0.0
    assert parse_config({"peers": {"kind": "kubernetes"}}).drain_delay == 5.0


def test_in_a_pod_the_router_is_named_after_its_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "aksflight-router-7d9f-abcde")
    assert parse_config({"peers": {"kind": "kubernetes"}}).own_name == "aksflight-router-7d9f-abcde"
    assert parse_config({"peers": {"kind": "static", "self_name": "r1"}}).own_name == "r1"
    monkeypatch.delenv("POD_NAME")
    assert parse_config({"peers": {"kind": "kubernetes"}}).own_name == "router-0"
