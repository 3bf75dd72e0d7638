"""The fast path (requests answered from callbacks on a kept-alive connection) keeps the
general path's behaviour: timeouts, retries before the first byte, streaming, token expiry,
and pipelining, each checked on requests that do take the fast path."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import httpx

from router.auth import TokenIssuer, generate_signing_key
from tests.router.router_support import backend, dumps, router, router_config, run

SCORE = "/api/v1/service/{}/score"


def _fast_count(server: object) -> int:
    return server.router.metrics.fast_path  # type: ignore[attr-defined, no-any-return]


def test_kept_alive_requests_take_the_fast_path_and_keep_ids_and_headers() -> None:
    async def scenario() -> None:
        async with backend() as model:
            config = router_config([{"name": "f", "replicas": [model.url]}])
            async with (
                router(config) as server,
                httpx.AsyncClient(base_url=server.base_url) as client,
            ):
                answers = [
                    await client.post(
                        SCORE.format("f"),
                        content=dumps({"data": [index]}),
                        headers={"x-ms-request-id": f"id-{index}"},
                    )
                    for index in range(5)
                ]
                assert [a.status_code for a in answers] == [200] * 5
                assert [a.headers["x-ms-request-id"] for a in answers] == [
                    f"id-{index}" for index in range(5)
                ]
                assert all(a.headers["x-ms-run-fn-exec-ms"] == "1" for a in answers)
                assert [h["x-ms-request-id"] for h in model.seen_headers] == [
                    f"id-{index}" for index in range(5)
                ]
                assert _fast_count(server) == 4  # all but the first, which opened the way
                metrics = server.router.metrics.render().decode()
                assert 'router_requests_total{code="200",service="f"} 5.0' in metrics

    run(scenario())


def test_timeout_on_the_fast_path_is_504_and_the_connection_stays_usable() -> None:
    async def scenario() -> None:
        async with backend() as model:
            service = {"name": "t", "replicas": [model.url], "scoring_timeout_ms": 200}
            async with (
                router(router_config([service])) as server,
                httpx.AsyncClient(base_url=server.base_url) as client,
            ):
                assert (await client.post(SCORE.format("t"), content=b"{}")).status_code == 200
                started = time.monotonic()
                slow = await client.post(SCORE.format("t") + "?delay=3", content=b"{}")
                assert slow.status_code == 504
                assert "200 ms" in slow.json()["error"]
                assert time.monotonic() - started < 2.0
                assert _fast_count(server) == 1
                assert (await client.post(SCORE.format("t"), content=b"{}")).status_code == 200

    run(scenario())


def test_replica_dying_on_a_kept_alive_connection_is_retried_elsewhere() -> None:
    async def scenario() -> None:
        async with backend() as dying, backend() as healthy:
            service = {"name": "d", "replicas": [dying.url, healthy.url]}
            async with (
                router(router_config([service])) as server,
                httpx.AsyncClient(base_url=server.base_url) as client,
            ):
                for _ in range(4):  # kept-alive connections to both replicas
                    assert (await client.post(SCORE.format("d"), content=b"{}")).status_code == 200
                assert dying.hits == 2
                fast_before = _fast_count(server)
                dying.die = "before-answer"
                answers = [
                    await client.post(SCORE.format("d"), content=dumps({"n": index}))
                    for index in range(4)
                ]
                assert [a.status_code for a in answers] == [200] * 4
                assert {a.json()["backend"] for a in answers} == {healthy.url}
                pool = server.router.services["d"].pool
                assert [r.url for r in pool.out_of_rotation()] == [dying.url]
                assert _fast_count(server) > fast_before
                assert pool.load().in_flight == 0

    run(scenario())


def test_large_answer_on_the_fast_path_is_streamed_whole() -> None:
    async def scenario() -> None:
        async with backend() as model:
            config = router_config([{"name": "s", "replicas": [model.url]}])
            async with (
                router(config) as server,
                httpx.AsyncClient(base_url=server.base_url) as client,
            ):
                assert (await client.post(SCORE.format("s"), content=b"{}")).status_code == 200
                answer = await client.post(SCORE.format("s") + "?stream=2000", content=b"{}")
                assert answer.status_code == 200
                assert answer.content == b"".join(b"chunk-%d;" % i for i in range(2000))
                assert answer.headers["x-ms-run-fn-exec-ms"] == "1"
                assert _fast_count(server) == 1
                assert (await client.post(SCORE.format("s"), content=b"{}")).status_code == 200

    run(scenario())


def test_a_token_that_expires_while_the_connection_stays_open_is_refused() -> None:
    async def scenario() -> None:
        private, public = generate_signing_key()
        issuer = TokenIssuer(private, "aksflight", lifetime=timedelta(seconds=2))
        token, _ = issuer.issue("k")
        auth = {"mode": "token", "issuer": "aksflight", "public_keys": [public]}
        async with backend() as model:
            service = {"name": "k", "replicas": [model.url], "auth": {**auth, "leeway_seconds": 0}}
            async with (
                router(router_config([service])) as server,
                httpx.AsyncClient(
                    base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}
                ) as client,
            ):
                for _ in range(3):
                    assert (await client.post(SCORE.format("k"), content=b"{}")).status_code == 200
                assert _fast_count(server) == 2
                await asyncio.sleep(max(0.0, int(time.time()) + 2.2 - time.time()) + 0.1)
                expired = await client.post(SCORE.format("k"), content=b"{}")
                assert expired.status_code == 401
                assert model.hits == 3

    run(scenario())


def test_a_changed_credential_on_the_same_connection_is_checked_again() -> None:
    async def scenario() -> None:
        keys = {"mode": "key", "primary_key": "p" * 20, "secondary_key": "s" * 20}
        async with backend() as model:
            service = {"name": "c", "replicas": [model.url], "auth": keys}
            async with (
                router(router_config([service])) as server,
                httpx.AsyncClient(base_url=server.base_url) as client,
            ):
                good = {"Authorization": "Bearer " + "p" * 20}
                bad = {"Authorization": "Bearer " + "x" * 20}
                assert (await client.post(SCORE.format("c"), headers=good)).status_code == 200
                assert (await client.post(SCORE.format("c"), headers=good)).status_code == 200
                assert (await client.post(SCORE.format("c"), headers=bad)).status_code == 401
                assert (await client.post(SCORE.format("c"))).status_code == 401
                assert model.hits == 2

    run(scenario())


def test_pipelined_requests_behind_a_fast_one_keep_their_order_and_half_close_works() -> None:
    async def scenario() -> None:
        async with backend() as model:
            config = router_config([{"name": "p", "replicas": [model.url]}])
            async with router(config) as server:
                assert server.port is not None
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                one = b"POST /api/v1/service/p/score%s HTTP/1.1\r\nHost: x\r\n"
                one += b"x-ms-request-id: id-%d\r\nContent-Length: 2\r\n\r\n{}"
                writer.write(one % (b"", 0))  # opens the way: checks auth, connects
                assert b"id-0" in await reader.readuntil(b"}")
                writer.write(
                    b"".join(
                        one % (query, index)
                        for index, query in ((1, b"?delay=0.1"), (2, b""), (3, b"?delay=0.05"))
                    )
                )
                rest = b""
                async with asyncio.timeout(5):
                    while rest.count(b"}") < 3:
                        rest += await reader.read(65536)
                positions = [rest.index(b"x-ms-request-id: id-%d" % i) for i in (1, 2, 3)]
                assert positions == sorted(positions)
                assert rest.count(b"HTTP/1.1 200 OK") == 3
                assert _fast_count(server) == 1  # the first of the three; the others queued
                writer.write(one % (b"?delay=0.1", 4))
                writer.write_eof()  # the client is done sending, as nginx is after a request
                async with asyncio.timeout(5):
                    last = await reader.read(-1)  # answered, then closed
                writer.close()
                assert b"x-ms-request-id: id-4" in last
                assert b"HTTP/1.1 200 OK" in last
                assert _fast_count(server) == 2

    run(scenario())
