"""Routing, headers, streaming, limits, queueing, timeouts and retries against real servers."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.router.router_support import (
    backend,
    dumps,
    eventually,
    free_port,
    router,
    router_config,
    run,
)

SCORE = "/api/v1/service/{}/score"


def _service(name: str, replicas: list[str], **extra: object) -> dict[str, object]:
    return {"name": name, "replicas": replicas, **extra}


def test_scores_through_the_v1_route_and_keeps_the_request_id() -> None:
    async def scenario() -> None:
        async with (
            backend() as model,
            router(router_config([_service("iris", [model.url])])) as server,
            httpx.AsyncClient(base_url=server.base_url) as client,
        ):
            answer = await client.post(
                SCORE.format("iris"),
                content=dumps({"data": [[1, 2]]}),
                headers={"x-ms-request-id": "abc-123", "Content-Type": "application/json"},
            )
            assert answer.status_code == 200
            assert answer.json()["bytes"] == len(dumps({"data": [[1, 2]]}))
            assert answer.headers["x-ms-request-id"] == "abc-123"
            assert answer.headers["x-ms-run-fn-exec-ms"] == "1"
            assert model.seen_headers[-1]["x-ms-request-id"] == "abc-123"
            assert "Authorization" not in model.seen_headers[-1]
            generated = await client.get(SCORE.format("iris"))
            assert generated.status_code == 200
            assert generated.json()["method"] == "GET"
            assert len(generated.headers["x-ms-request-id"]) == 36
            swagger = await client.get("/api/v1/service/iris/swagger.json?version=3")
            assert swagger.json() == {"swagger": "2.0", "query": {"version": "3"}}
            missing = await client.post(SCORE.format("nope"), content=b"{}")
            assert missing.status_code == 404

    run(scenario())


def test_swagger_can_be_opened_without_a_credential() -> None:
    async def scenario() -> None:
        keys = {"mode": "key", "primary_key": "p" * 20, "secondary_key": "s" * 20}
        async with backend() as model:
            services = [
                _service("closed", [model.url], auth=keys),
                _service("open", [model.url], auth=keys, swagger_requires_auth=False),
            ]
            async with (
                router(router_config(services)) as server,
                httpx.AsyncClient(base_url=server.base_url) as client,
            ):
                assert (await client.get("/api/v1/service/closed/swagger.json")).status_code == 401
                assert (await client.get("/api/v1/service/open/swagger.json")).status_code == 200
                assert (await client.post(SCORE.format("open"), content=b"{}")).status_code == 401

    run(scenario())


def test_streams_large_request_and_response_bodies() -> None:
    async def scenario() -> None:
        async with (
            backend() as model,
            router(router_config([_service("big", [model.url])])) as server,
        ):

            async def body():  # type: ignore[no-untyped-def]
                for _ in range(64):
                    yield b"x" * 65536

            async with httpx.AsyncClient(base_url=server.base_url) as client:
                answer = await client.post(SCORE.format("big"), content=body())
                assert answer.json()["bytes"] == 64 * 65536
                streamed = await client.post(SCORE.format("big") + "?stream=500", content=b"{}")
                assert streamed.text == "".join(f"chunk-{i};" for i in range(500))

    run(scenario())


def test_body_over_the_limit_is_413_by_header_and_while_streaming() -> None:
    limit = 1_000_000

    async def scenario() -> None:
        config = router_config([_service("m", [])], max_request_body_bytes=limit)
        async with backend() as model:
            config["services"][0]["replicas"] = [model.url]
            async with (
                router(config) as server,
                httpx.AsyncClient(base_url=server.base_url) as client,
            ):
                declared = await client.post(SCORE.format("m"), content=b"x" * (limit + 1))
                assert declared.status_code == 413
                assert model.hits == 0

                async def chunked():  # type: ignore[no-untyped-def]
                    sent = 0
                    while sent <= limit:
                        yield b"y" * 100_000
                        sent += 100_000

                streamed = await client.post(SCORE.format("m"), content=chunked())
                assert streamed.status_code == 413
                exact = await client.post(SCORE.format("m"), content=b"x" * limit)
                assert exact.status_code == 200

    run(scenario())


def test_waits_in_queue_then_503_after_max_request_wait_time() -> None:
    async def scenario() -> None:
        service = _service("slow", [], max_request_wait_time=200)
        async with backend() as model:
            service["replicas"] = [model.url]
            async with (
                router(router_config([service])) as server,
                httpx.AsyncClient(base_url=server.base_url, timeout=10) as client,
            ):
                long = asyncio.ensure_future(
                    client.post(SCORE.format("slow") + "?delay=1.0", content=b"{}")
                )
                pool = server.router.services["slow"].pool
                await eventually(lambda: pool.load().in_flight == 1)
                loop = asyncio.get_running_loop()
                started = loop.time()
                rejected = await client.post(
                    SCORE.format("slow"), content=b"{}", headers={"x-ms-request-id": "queued-1"}
                )
                waited = loop.time() - started
                assert rejected.status_code == 503
                assert rejected.headers["x-ms-request-id"] == "queued-1"
                assert 0.18 <= waited < 0.9
                assert (await long).status_code == 200
                assert model.max_concurrent == 1
                queued = asyncio.ensure_future(
                    client.post(SCORE.format("slow") + "?delay=0.1", content=b"{}")
                )
                await eventually(lambda: pool.load().in_flight == 1)
                behind = await client.post(SCORE.format("slow"), content=b"{}")
                assert behind.status_code == 200
                assert (await queued).status_code == 200

    run(scenario())


def test_504_after_scoring_timeout() -> None:
    async def scenario() -> None:
        service = _service("t", [], scoring_timeout_ms=200)
        async with backend() as model:
            service["replicas"] = [model.url]
            async with (
                router(router_config([service])) as server,
                httpx.AsyncClient(base_url=server.base_url) as client,
            ):
                started = asyncio.get_running_loop().time()
                answer = await client.post(SCORE.format("t") + "?delay=3", content=b"{}")
                assert answer.status_code == 504
                assert asyncio.get_running_loop().time() - started < 2.0
                fine = await client.post(SCORE.format("t") + "?delay=0.05", content=b"{}")
                assert fine.status_code == 200

    run(scenario())


def test_dead_replica_is_retried_elsewhere_and_taken_out_of_rotation() -> None:
    async def scenario() -> None:
        dead = f"http://127.0.0.1:{free_port()}"
        async with backend() as model:
            service = _service("r", [dead, model.url], replica_max_concurrent_requests=4)
            async with (
                router(router_config([service])) as server,
                httpx.AsyncClient(base_url=server.base_url) as client,
            ):
                answers = await asyncio.gather(
                    *(client.post(SCORE.format("r"), content=b"{}") for _ in range(20))
                )
                assert [a.status_code for a in answers] == [200] * 20
                assert model.hits == 20
                pool = server.router.services["r"].pool
                dead_replica = next(r for r in pool.replicas if r.url == dead)
                assert not dead_replica.in_rotation
                assert dead_replica.failures >= 1

    run(scenario())


def test_replica_dying_before_answering_is_retried_invisibly() -> None:
    async def scenario() -> None:
        async with backend() as dying, backend() as healthy:
            dying.die = "before-answer"
            service = _service("d", [dying.url, healthy.url])
            async with (
                router(router_config([service])) as server,
                httpx.AsyncClient(base_url=server.base_url) as client,
            ):
                answers = [
                    await client.post(SCORE.format("d"), content=dumps({"data": [i]}))
                    for i in range(6)
                ]
                assert [a.status_code for a in answers] == [200] * 6
                assert {a.json()["backend"] for a in answers} == {healthy.url}
                assert dying.hits == 1
                assert healthy.hits == 6
                retries = server.router.metrics.render().decode()
                assert 'router_replica_retries_total{service="d"} 1.0' in retries

    run(scenario())


def test_replica_back_in_rotation_after_health_check_passes() -> None:
    async def scenario() -> None:
        async with backend() as flaky, backend() as healthy:
            flaky.die = "before-answer"
            service = _service("h", [flaky.url, healthy.url])
            config = router_config([service], replica_retry_seconds=0.2)
            async with (
                router(config) as server,
                httpx.AsyncClient(base_url=server.base_url) as client,
            ):
                assert (await client.post(SCORE.format("h"), content=b"{}")).status_code == 200
                pool = server.router.services["h"].pool
                assert [r.url for r in pool.out_of_rotation()] == [flaky.url]
                flaky.die = ""
                for _ in range(40):
                    await asyncio.sleep(0.05)
                    if not pool.out_of_rotation():
                        break
                assert pool.out_of_rotation() == []

    run(scenario())


def test_nothing_is_retried_after_the_replica_sent_bytes() -> None:
    async def scenario() -> None:
        async with backend() as broken, backend() as healthy:
            broken.die = "after-headers"
            service = _service("n", [broken.url, healthy.url])
            async with (
                router(router_config([service])) as server,
                httpx.AsyncClient(base_url=server.base_url) as client,
            ):
                try:
                    answer = await client.post(SCORE.format("n"), content=b"{}")
                    failed = answer.status_code != 200 or len(answer.content) != 1000
                except httpx.HTTPError:
                    failed = True
                assert failed
                assert broken.hits == 1
                assert healthy.hits == 0

    run(scenario())


def test_stopping_lets_requests_in_flight_finish_and_turns_readiness_off() -> None:
    async def scenario() -> None:
        async with backend() as model:
            service = _service("g", [model.url])
            from router.config import parse_config
            from router.server import RouterServer

            server = RouterServer(parse_config(router_config([service])))
            await server.start()
            async with httpx.AsyncClient(base_url=server.base_url) as client:
                assert (await client.get("/readyz")).status_code == 200
                slow = asyncio.ensure_future(
                    client.post(SCORE.format("g") + "?delay=0.5", content=b"{}")
                )
                pool = server.router.services["g"].pool
                await eventually(lambda: pool.load().in_flight == 1)
                stopping = asyncio.ensure_future(server.stop())
                await eventually(lambda: not server.router.ready)
                async with httpx.AsyncClient() as fresh:
                    with pytest.raises(httpx.ConnectError):
                        await fresh.get(server.base_url + "/healthz")
                assert (await slow).status_code == 200
                await stopping

    run(scenario())
