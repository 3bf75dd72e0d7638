"""Metrics, access logs, model data collection, TLS termination and live configuration reload."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from pathlib import Path

import httpx
import pytest
import trustme

from router.config import DataCollectionConfig, dump_config, parse_config
from router.datacollect import DataCollector
from router.server import RouterServer
from tests.router.router_support import backend, dumps, eventually, router, router_config, run

SCORE = "/api/v1/service/{}/score"


def test_metrics_count_requests_latency_queue_and_replicas() -> None:
    async def scenario() -> None:
        async with backend() as model:
            service = {"name": "m", "replicas": [model.url], "max_request_wait_time": 100}
            async with (
                router(router_config([service])) as server,
                httpx.AsyncClient(base_url=server.base_url) as client,
            ):
                for _ in range(3):
                    assert (await client.post(SCORE.format("m"), content=b"{}")).status_code == 200
                slow = asyncio.ensure_future(
                    client.post(SCORE.format("m") + "?delay=0.5", content=b"{}")
                )
                pool = server.router.services["m"].pool
                await eventually(lambda: pool.load().in_flight == 1)
                waiting = asyncio.ensure_future(client.post(SCORE.format("m"), content=b"{}"))
                await eventually(lambda: pool.load().queued == 1)
                during = (await client.get("/metrics")).text
                assert (await waiting).status_code == 503
                await slow
                after = (await client.get("/metrics")).text
        assert 'router_queue_depth{service="m"} 1.0' in during
        assert f'router_replica_in_flight{{replica="{model.url}",service="m"}} 1.0' in during
        assert 'router_replicas_ready{service="m"} 1.0' in after
        assert 'router_requests_total{code="200",service="m"} 4.0' in after
        assert 'router_requests_total{code="503",service="m"} 1.0' in after
        assert 'router_request_duration_seconds_count{service="m"} 5.0' in after

    run(scenario())


def test_access_log_is_one_json_object_per_request(tmp_path: Path) -> None:
    log = tmp_path / "access.log"

    async def scenario() -> None:
        async with backend() as model:
            config = router_config(
                [{"name": "m", "replicas": [model.url]}],
                access_log={"enabled": True, "path": str(log)},
            )
            async with (
                router(config) as server,
                httpx.AsyncClient(base_url=server.base_url) as client,
            ):
                await client.post(
                    SCORE.format("m"),
                    content=dumps({"data": [1]}),
                    headers={"x-ms-request-id": "r1"},
                )
                await client.post(SCORE.format("absent"), content=b"{}")

    run(scenario())
    first, second = (json.loads(line) for line in log.read_text().splitlines())
    assert first["request_id"] == "r1"
    assert first["service"] == "m" and first["status"] == 200
    assert first["replica"].startswith("http://127.0.0.1:")
    assert first["bytes_in"] == len(dumps({"data": [1]}))
    assert first["bytes_out"] > 0 and first["latency_ms"] > 0
    assert second["status"] == 404 and second["replica"] is None


def test_data_collection_writes_inputs_and_outputs_and_rotates(tmp_path: Path) -> None:
    directory = tmp_path / "collected"

    async def scenario() -> None:
        async with backend() as model:
            service = {
                "name": "m",
                "replicas": [model.url],
                "data_collection": {
                    "enabled": True,
                    "directory": str(directory),
                    "max_bytes": 2000,
                    "backup_count": 2,
                },
            }
            async with (
                router(router_config([service])) as server,
                httpx.AsyncClient(base_url=server.base_url) as client,
            ):
                for index in range(40):
                    await client.post(SCORE.format("m"), content=dumps({"data": [index]}))

    run(scenario())
    files = sorted(path.name for path in directory.iterdir())
    assert files == ["m.jsonl", "m.jsonl.1", "m.jsonl.2"]
    records = [
        json.loads(line)
        for name in reversed(files)
        for line in (directory / name).read_text().splitlines()
    ]
    assert all(path.stat().st_size <= 2000 for path in directory.iterdir())
    assert records[-1]["input"] == {"data": {"data": [39]}}
    assert records[-1]["output"]["data"]["bytes"] == len(dumps({"data": [39]}))
    assert records[-1]["service"] == "m" and records[-1]["status"] == 200
    assert [r["input"]["data"]["data"][0] for r in records] == list(range(40 - len(records), 40))


def test_data_collection_never_blocks_and_counts_what_it_drops(tmp_path: Path) -> None:
    config = DataCollectionConfig(enabled=True, directory=tmp_path, queue_size=1)
    collector = DataCollector("m", config)
    collector._handler.acquire()  # the writer thread blocks on its first record
    try:
        started = time.perf_counter()
        for index in range(200):
            collector.collect(str(index), 200, b"{}", b"{}")
        assert time.perf_counter() - started < 0.1
        assert collector.dropped >= 198
    finally:
        collector._handler.release()
        collector.close()


def test_tls_termination(tmp_path: Path) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    certificate.cert_chain_pems[0].write_to_path(cert_file)
    certificate.private_key_pem.write_to_path(key_file)
    trusted = ssl.create_default_context()
    authority.configure_trust(trusted)

    async def scenario() -> None:
        async with backend() as model:
            config = router_config(
                [{"name": "m", "replicas": [model.url]}],
                tls={"cert_file": str(cert_file), "key_file": str(key_file)},
            )
            async with router(config) as server:
                assert server.base_url.startswith("https://")
                async with httpx.AsyncClient(base_url=server.base_url, verify=trusted) as client:
                    assert (await client.post(SCORE.format("m"), content=b"{}")).status_code == 200
                async with httpx.AsyncClient(base_url=server.base_url) as untrusting:
                    with pytest.raises(httpx.ConnectError):
                        await untrusting.get("/healthz")

    run(scenario())


def test_bad_certificate_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    config = parse_config(
        router_config(
            [], tls={"cert_file": str(tmp_path / "cert.pem"), "key_file": str(tmp_path / "k")}
        )
    )
    from router.errors import ConfigError

    with pytest.raises(ConfigError, match="tls"):
        run(RouterServer(config).start())


def test_config_file_changes_apply_live_and_a_broken_file_keeps_the_old_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "router.json"

    async def scenario() -> None:
        async with backend() as model:
            keys = {"mode": "key", "primary_key": "p" * 20, "secondary_key": "s" * 20}
            data = router_config(
                [{"name": "m", "replicas": [model.url], "auth": keys}], reload_seconds=0.05
            )
            path.write_text(dump_config(parse_config(data)))
            server = RouterServer(parse_config(data), path)
            await server.start()
            try:
                async with httpx.AsyncClient(base_url=server.base_url) as client:

                    async def status(key: str) -> int:
                        answer = await client.post(
                            SCORE.format("m"), headers={"Authorization": f"Bearer {key}"}
                        )
                        return answer.status_code

                    assert await status("p" * 20) == 200
                    rotated = {**keys, "primary_key": "n" * 20}
                    data["services"][0]["auth"] = rotated
                    data["services"].append({"name": "extra", "replicas": [model.url]})
                    path.write_text(dump_config(parse_config(data)))
                    for _ in range(100):
                        if await status("p" * 20) == 401:
                            break
                        await asyncio.sleep(0.02)
                    assert await status("n" * 20) == 200
                    assert await status("s" * 20) == 200
                    assert "extra" in server.router.services
                    path.write_text("{broken")
                    await asyncio.sleep(0.3)
                    assert await status("n" * 20) == 200
            finally:
                await server.stop()

    run(scenario())
