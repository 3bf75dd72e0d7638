"""The router's HTTP/1.1 handling on raw sockets: pipelining, 100-continue, framing, bad input."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import httpx
import pytest

from tests.router.router_support import backend, eventually, router, router_config, run

SCORE = b"/api/v1/service/m/score"


async def _exchange(port: int, data: bytes, until: bytes, timeout: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    received = b""
    try:
        async with asyncio.timeout(timeout):
            while until not in received:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                received += chunk
    finally:
        writer.close()
    return received


def test_pipelined_requests_are_answered_in_order() -> None:
    async def scenario() -> None:
        async with backend() as model:
            config = router_config([{"name": "m", "replicas": [model.url]}])
            async with router(config) as server:
                assert server.port is not None
                requests = b"".join(
                    b"POST %s?delay=%s HTTP/1.1\r\nHost: x\r\nx-ms-request-id: id-%d\r\n"
                    b"Content-Length: 2\r\n\r\n{}" % (SCORE, delay, index)
                    for index, delay in enumerate([b"0.1", b"0", b"0.05"])
                )
                answer = await _exchange(server.port, requests, b"id-2")
                positions = [answer.index(b"x-ms-request-id: id-%d" % i) for i in range(3)]
                assert positions == sorted(positions)
                assert answer.count(b"HTTP/1.1 200 OK") == 3

    run(scenario())


def test_http_1_0_and_malformed_requests() -> None:
    async def scenario() -> None:
        async with backend() as model:
            config = router_config([{"name": "m", "replicas": [model.url]}])
            async with router(config) as server:
                assert server.port is not None
                old = await _exchange(
                    server.port, b"GET /healthz HTTP/1.0\r\n\r\n", b"ok", timeout=2
                )
                assert old.startswith(b"HTTP/1.1 200 OK")
                assert b"connection: close" in old
                bad = await _exchange(server.port, b"NOT HTTP AT ALL\r\n\r\n", b"}", timeout=2)
                assert bad.startswith(b"HTTP/1.1 400 Bad Request")
                missing = await _exchange(
                    server.port, b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", b"}", timeout=2
                )
                assert missing.startswith(b"HTTP/1.1 404 Not Found")

    run(scenario())


def test_chunked_request_and_expect_continue() -> None:
    async def scenario() -> None:
        async with backend() as model:
            config = router_config([{"name": "m", "replicas": [model.url]}])
            async with router(config) as server:
                assert server.port is not None
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(
                    b"POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                    b"Expect: 100-continue\r\n\r\n" % SCORE
                )
                interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
                assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
                writer.write(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
                assert head.startswith(b"HTTP/1.1 200 OK")
                length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
                body = await reader.readexactly(length)
                assert b'"bytes": 11' in body
                writer.close()

    run(scenario())


def test_client_leaving_mid_body_does_not_blame_the_replica() -> None:
    async def scenario() -> None:
        async with backend() as model:
            config = router_config([{"name": "m", "replicas": [model.url]}])
            async with router(config) as server:
                assert server.port is not None
                _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(
                    b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" % SCORE
                    + b"x" * 100_000
                )
                await writer.drain()
                pool = server.router.services["m"].pool
                await eventually(lambda: pool.load().in_flight == 1)
                writer.close()
                await eventually(lambda: pool.load().in_flight == 0)
                assert pool.out_of_rotation() == []
                again = await _exchange(
                    server.port,
                    b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}" % SCORE,
                    b"}",
                )
                assert again.startswith(b"HTTP/1.1 200 OK")

    run(scenario())


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_with_a_large_upload_gets_its_answer() -> None:
    async def scenario() -> None:
        async with backend() as model:
            config = router_config([{"name": "m", "replicas": [model.url]}])
            async with router(config) as server:
                process = await asyncio.create_subprocess_exec(
                    "curl",
                    "-s",
                    "-X",
                    "POST",
                    "--data-binary",
                    "@-",
                    f"{server.base_url}/api/v1/service/m/score",
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
                output, _ = await process.communicate(b"z" * 3_000_000)
                assert b'"bytes": 3000000' in output

    run(scenario())


def test_half_closed_client_still_gets_its_answer() -> None:
    async def scenario() -> None:
        async with backend() as model:
            config = router_config([{"name": "m", "replicas": [model.url]}])
            async with router(config) as server:
                assert server.port is not None
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}" % SCORE)
                writer.write_eof()
                answer = await asyncio.wait_for(reader.read(), 5)  # read() returns at close
                assert answer.startswith(b"HTTP/1.1 200 OK")
                assert answer.endswith(b"}")
                writer.close()

    run(scenario())


def test_a_client_that_leaves_the_queue_never_reaches_a_replica() -> None:
    async def scenario() -> None:
        async with backend() as model:
            service = {"name": "m", "replicas": [model.url], "max_request_wait_time": 3000}
            async with router(router_config([service])) as server:
                assert server.port is not None
                busy = asyncio.ensure_future(
                    _exchange(
                        server.port,
                        b"POST %s?delay=0.4 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
                        % SCORE,
                        b"}",
                    )
                )
                pool = server.router.services["m"].pool
                await eventually(lambda: pool.load().in_flight == 1)
                _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}" % SCORE)
                await writer.drain()
                await eventually(lambda: pool.load().queued == 1)
                writer.close()
                await eventually(lambda: pool.load().queued == 0)
                assert (await busy).startswith(b"HTTP/1.1 200 OK")
                await asyncio.sleep(0.1)
                assert model.hits == 1

    run(scenario())


def test_bodiless_statuses_keep_the_connection_usable() -> None:
    async def scenario() -> None:
        async with backend() as model:
            config = router_config([{"name": "m", "replicas": [model.url]}])
            async with router(config) as server:
                assert server.port is not None
                two = (
                    b"POST %s?status=204 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
                    b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}" % (SCORE, SCORE)
                )
                answer = await _exchange(server.port, two, b'"backend"')
                first, _, rest = answer.partition(b"\r\n\r\n")
                assert first.startswith(b"HTTP/1.1 204 No Content")
                assert b"content-length" not in first and b"transfer-encoding" not in first
                assert rest.startswith(b"HTTP/1.1 200 OK")

    run(scenario())


async def _raw_backend(answer: bytes) -> asyncio.Server:
    """A replica that reads one request head and sends `answer` verbatim, then closes."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


@pytest.mark.parametrize(
    ("answer", "body"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close", b"until-close"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 400000\r\n\r\n" + b"L" * 400_000, b"L" * 400_000),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            b"abcde",
        ),
    ],
    ids=["read-until-close", "large-with-length", "chunked"],
)
def test_response_framings_from_the_replica(answer: bytes, body: bytes) -> None:
    async def scenario() -> None:
        replica = await _raw_backend(answer)
        port = replica.sockets[0].getsockname()[1]
        config = router_config([{"name": "m", "replicas": [f"http://127.0.0.1:{port}"]}])
        try:
            async with (
                router(config) as server,
                httpx.AsyncClient(base_url=server.base_url) as client,
            ):
                for _ in range(2):  # the second one proves the client connection survived
                    got = await client.post("/api/v1/service/m/score", content=b"{}")
                    assert got.status_code == 200
                    assert got.content == body
        finally:
            replica.close()

    run(scenario())


def test_a_failure_inside_a_parser_callback_is_logged_not_a_400(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """httptools wraps a callback's exception as a parse error; the router's own bug must
    not pass for the client's bad request."""

    def broken(router: object, request: object, response: object) -> bool:
        raise RuntimeError("boom in the fast path")

    monkeypatch.setattr("router.server.try_fast", broken)  # server.py is not compiled

    async def scenario() -> bytes:
        async with backend() as model:
            config = router_config([{"name": "m", "replicas": [model.url]}])
            async with router(config) as server:
                assert server.port is not None
                return await _exchange(
                    server.port,
                    b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}" % SCORE,
                    b"\r\n\r\n",
                    timeout=3,
                )

    answer = run(scenario())
    assert b"400" not in answer
    failures = [r for r in caplog.records if r.getMessage() == "request handling failed"]
    assert failures
    assert failures[0].exc_info is not None
    assert "boom in the fast path" in str(failures[0].exc_info[1])
