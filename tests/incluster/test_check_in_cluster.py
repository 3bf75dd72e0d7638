"""`aksflight check --in-cluster` end to end against the fake API server: the command's
JSON, and Ctrl-C / SIGTERM in a real process leaving nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from aksflight.cli import main
from preflight.incluster import in_cluster_plan
from rules.catalogue import requirements_for
from rules.model import Observation, Phase, ProbeStatus
from rules.plan import build_plan
from tests.conftest import EXAMPLES, REPO, example_config
from tests.incluster.support import all_ok, leftovers, report_log, simulate, two_pools

pytestmark = pytest.mark.fakekube(nodes=2)
CONFIG = EXAMPLES / "lab.yaml"


def _args(kube: Any, *extra: str) -> list[str]:
    return [
        "check",
        "-c",
        str(CONFIG),
        "--phase",
        "router-install",
        "--timeout",
        "1",
        "--nameserver",
        "127.0.0.1:9",
        "--kubeconfig",
        str(kube.kubeconfig_path),
        "--in-cluster",
        "--in-cluster-timeout",
        "20",
        "--no-progress",
        *extra,
    ]


def _plan() -> Any:
    requirements = requirements_for(example_config("lab.yaml"))
    return in_cluster_plan(build_plan(requirements, [Phase.ROUTER_INSTALL]))


def test_the_command_compares_here_with_each_pool(fakekube: Any, capsys: Any) -> None:
    two_pools(fakekube)
    plan = _plan()
    refused = Observation("tcp:mcr.microsoft.com:443", ProbeStatus.REFUSED, 1.0, "reset")
    simulate(fakekube, "system", log=report_log("system", all_ok(plan)))
    simulate(fakekube, "gpu", log=report_log("gpu", all_ok(plan, tcp=refused)))

    code = main(_args(fakekube, "-o", "json"))

    document = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [c["name"] for c in document["columns"]] == ["here", "pool gpu", "pool system"]
    assert [c["verdict"] for c in document["columns"][1:]] == ["fail", "pass"]
    row = next(c for c in document["checks"] if c["id"] == "tcp:mcr.microsoft.com:443")
    statuses = {name: cell["status"] for name, cell in row["results"].items()}
    # from here the DNS server does not answer, so TCP waits on DNS; on the pools it ran
    assert statuses == {"here": "blocked", "pool gpu": "fail", "pool system": "pass"}
    assert row["differs"] is True
    assert {f["id"] for f in document["cluster"]} >= {"cluster:network-plugin", "cluster:region"}
    assert leftovers(fakekube) == []


def test_other_formats_are_refused_before_anything_is_created(fakekube: Any, capsys: Any) -> None:
    assert main(_args(fakekube, "-o", "junit")) == 2
    assert "--in-cluster: -o is table or json" in capsys.readouterr().err
    assert fakekube.requests.writes() == []


def test_node_pool_without_in_cluster_is_bad_input(capsys: Any) -> None:
    assert main(["check", "-c", str(CONFIG), "--node-pool", "gpu"]) == 2
    assert "--node-pool and --per-node need --in-cluster" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_deletes_what_it_created(fakekube: Any, signum: int) -> None:
    simulate(fakekube, "nodepool1", mode="pending")  # the pods never finish by themselves
    process = subprocess.Popen(
        [sys.executable, "-m", "aksflight", *_args(fakekube)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not fakekube.store.list("Pod") and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            time.sleep(0.1)
        assert fakekube.store.list("Job"), "the run never created its Job"
        process.send_signal(signum)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert leftovers(fakekube) == []
