"""`aksflight router status` against the fake API server, a running router and bad input."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from aksflight.cli import main
from router.config import parse_config
from router.kube import KubernetesApi
from router.scaling_config import SelfScalingConfig
from router.selfscale import ScalingDecision
from router.selfscale_kube import KubernetesRouterTarget
from router.server import RouterServer
from tests.router.router_support import free_port, router_config, run
from tests.router_scaling.test_kube_target import NAMESPACE, _router_deployment

pytest.importorskip("fakekube")


def _decision(action: str) -> ScalingDecision:
    return ScalingDecision(
        1_700_000_000.0, action, "CPU 5% of 1 under 30% for 300 s", 1, 0, 2, 2, 2.5, 5.0
    )


def test_status_shows_pods_sizes_figures_and_decisions_from_the_api(
    fakekube: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    api_client = fakekube.api_client()
    client.AppsV1Api(api_client).create_namespaced_deployment(
        NAMESPACE, _router_deployment(replicas=2, cpu="1", memory="1Gi")
    )
    target = KubernetesRouterTarget(KubernetesApi(api_client), SelfScalingConfig(), NAMESPACE)
    pods = sorted(p["metadata"]["name"] for p in fakekube.store.list("pods", NAMESPACE))
    figures = {pods[0]: {"routing_ms": {"p99": 1.25}, "cpu_cores": 0.05, "window_seconds": 10}}
    run(target.record([_decision("down")], figures))
    argv = ["router", "status", "--kubeconfig", str(fakekube.kubeconfig_path)]
    assert main([*argv, "--namespace", NAMESPACE]) == 0
    table = capsys.readouterr().out
    assert f"routers of deployment {NAMESPACE}/aksflight-router: 2 wanted" in table
    assert all(name in table for name in pods)
    first = next(line for line in table.splitlines() if line.startswith(pods[0]))
    assert first.split()[3:7] == ["1", "1Gi", "1.25", "ms"]
    assert "down    size 1->0, routers 2->2: CPU 5% of 1 under 30% for 300 s" in table
    assert main([*argv, "--namespace", NAMESPACE, "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in data["routers"]] == pods
    assert data["decisions"][0]["action"] == "down"


def test_status_from_a_running_routers_url(capsys: pytest.CaptureFixture[str]) -> None:
    async def scenario() -> int:
        server = RouterServer(parse_config(router_config([])))
        await server.start()
        try:
            return await asyncio.to_thread(
                main, ["router", "status", "--url", server.base_url, "-o", "json"]
            )
        finally:
            await server.stop()

    assert run(scenario()) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["routers"][0]["name"] == "router-0"
    assert set(data["routers"][0]["figures"]) == {"routing_ms", "cpu_cores", "window_seconds"}
    assert data["decisions"] == []


def test_status_input_errors_are_exit_2_and_unreachable_is_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["router", "status", "--url", "router:8080"]) == 2
    assert "--url must be an http(s) URL" in capsys.readouterr().err
    assert main(["router", "status", "--kubeconfig", str(tmp_path / "none")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["router", "status", "--url", f"http://127.0.0.1:{free_port()}"]) == 1
    assert "router status:" in capsys.readouterr().err
    assert main(["router", "status", "--fleet", str(tmp_path)]) == 1
    assert "no local router fleet" in capsys.readouterr().err
