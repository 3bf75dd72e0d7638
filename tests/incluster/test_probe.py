"""What a probe pod runs: the same `run_plan`, plus pod-to-pod checks on the router and
model ports through listeners in each pod, the peers found through the API server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest
from kubernetes import client
from kubernetes.aio import client as aio_client

from preflight import eventloop
from preflight.incluster import in_cluster_plan, parse_report
from preflight.incluster.manifests import POOL_LABEL
from preflight.incluster.probe import PeerSettings, Where, run_probe
from preflight.options import ProbeOptions
from rules.catalogue import requirements_for
from rules.model import Phase, ProbeStatus
from rules.plan import build_plan
from tests.conftest import REPO, example_config

NAMESPACE = "probe-test"
SELECTOR = "app=probe"
ROUTER_PORT, MODEL_PORT = 18080, 15001


def _pods(kube: Any, addresses: dict[str, tuple[str, str]]) -> None:
    """Probe pods named by `addresses` (pod → (pool, loopback address))."""
    kube.controllers.kubelet.pod_ip_allocator = lambda pod: addresses[pod["metadata"]["name"]][1]
    core = client.CoreV1Api(kube.api_client())
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    for name, (pool, _) in addresses.items():
        core.create_namespaced_pod(
            NAMESPACE,
            {
                "metadata": {"name": name, "labels": {"app": "probe", POOL_LABEL: pool}},
                "spec": {"containers": [{"name": "probe", "image": "x"}]},
            },
        )


def _options(kube: Any) -> ProbeOptions:
    async def factory() -> Any:
        configuration = aio_client.Configuration()
        configuration.host = kube.url
        return aio_client.ApiClient(configuration)

    return ProbeOptions(
        nameservers=["127.0.0.1:9"], timeout=1.0, namespace=NAMESPACE, kube_client_factory=factory
    )


def _plan() -> Any:
    requirements = requirements_for(example_config("lab.yaml"))
    phases = [Phase.ROUTER_STARTUP, Phase.ROUTER_RUNNING]
    return in_cluster_plan(build_plan(requirements, phases, keep_going=True))


async def _run_pods(kube: Any, listening: dict[str, str], expected: int) -> dict[str, Any]:
    plan = _plan()
    options = _options(kube)

    async def one(pod: str, address: str) -> Any:
        settings = PeerSettings(
            SELECTOR, expected, NAMESPACE, address, ROUTER_PORT, MODEL_PORT, linger_s=2.0
        )
        return await run_probe(plan, options, Where("p", "n", pod, address), settings)

    reports = await asyncio.gather(*(one(p, a) for p, a in listening.items()))
    return dict(zip(listening, reports, strict=True))


def test_pods_reach_each_other_on_both_ports(fakekube: Any) -> None:
    _pods(fakekube, {"probe-a": ("system", "127.0.0.2"), "probe-b": ("gpu", "127.0.0.3")})

    pods = {"probe-a": "127.0.0.2", "probe-b": "127.0.0.3"}
    reports = eventloop.run(_run_pods(fakekube, pods, 2))

    for report in reports.values():
        router = report.observations["peer:router"]
        assert router.status is ProbeStatus.OK, router.detail
        assert router.evidence["port"] == ROUTER_PORT
        assert {p: v["pool"] for p, v in router.evidence["peers"].items()} == {
            "probe-a": "system",
            "probe-b": "gpu",
        }
        assert report.observations["peer:model-pods"].evidence["port"] == MODEL_PORT
        assert report.observations["peer:model-pods"].status is ProbeStatus.OK
        # The same probes as from anywhere: the plan's DNS checks ran, through the resolver.
        assert report.observations["dns:kubernetes.default.svc.cluster.local"].status is (
            ProbeStatus.DNS_TIMEOUT
        )


def test_a_pod_nothing_listens_on_is_named_with_its_pool(fakekube: Any) -> None:
    _pods(
        fakekube,
        {
            "probe-a": ("system", "127.0.0.2"),
            "probe-b": ("gpu", "127.0.0.3"),
            "probe-c": ("spot", "127.0.0.4"),  # never started its listener
        },
    )

    pods = {"probe-a": "127.0.0.2", "probe-b": "127.0.0.3"}
    reports = eventloop.run(_run_pods(fakekube, pods, 3))

    router = reports["probe-a"].observations["peer:router"]
    assert router.status is ProbeStatus.REFUSED
    assert router.detail == f"port {ROUTER_PORT}: probe-c (spot) refused"
    assert router.evidence["peers"]["probe-b"]["status"] == "ok"
    assert router.evidence["found"] == 3


def test_peer_checks_are_forbidden_when_the_pods_may_not_list_pods(fakekube: Any) -> None:
    _pods(fakekube, {"probe-a": ("system", "127.0.0.2")})
    fakekube.access.enforce = True
    fakekube.access.deny("list", "pods")

    reports = eventloop.run(_run_pods(fakekube, {"probe-a": "127.0.0.2"}, 1))

    router = reports["probe-a"].observations["peer:router"]
    assert router.status is ProbeStatus.FORBIDDEN
    assert router.detail.startswith("cannot list the probe pods")


@pytest.mark.slow
def test_the_probe_command_prints_one_document(tmp_path: Any) -> None:
    config = REPO / "aksflight" / "examples" / "lab.yaml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "aksflight",
            "probe",
            "-c",
            str(config),
            "--phase",
            "router-install",
            "--timeout",
            "1",
            "--nameserver",
            "127.0.0.1:9",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "AKSFLIGHT_POOL": "system",
            "NODE_NAME": "aks-system-0",
        },
    )
    assert done.returncode == 0, done.stderr
    report = parse_report(done.stdout)
    assert (report.pool, report.node) == ("system", "aks-system-0")
    assert report.observations["dns:mcr.microsoft.com"].status is ProbeStatus.DNS_TIMEOUT
    assert json.loads(done.stdout.strip())["schema"] == "aksflight-probe/1"
