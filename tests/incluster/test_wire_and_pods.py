"""The observation document's round trip, what a pod's status means, and the verdict of a
comparison (the runner's own column does not decide it)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from preflight.incluster import Launcher, ProbeOutputError, parse_report
from preflight.incluster.wire import ProbeReport, dump_report
from reports.comparison import Column, Comparison
from rules.evaluate import evaluate
from rules.model import Observation, ProbeStatus, Status
from tests.incluster.support import all_ok, lab_plan, simulate
from tests.incluster.test_launcher import _launcher


def test_a_report_survives_the_log_it_travels_in() -> None:
    obs = Observation("dns:x.example", ProbeStatus.NXDOMAIN, 3.25, "no such name", {"a": [1]})
    report = ProbeReport("gpu", "node-2", "probe-gpu-1", {obs.check_id: obs}, 4.5, "10.0.0.9")
    log = "warning: something\n" + dump_report(report) + "\n{not json\n"
    back = parse_report(log)
    assert back.observations == {obs.check_id: obs}
    assert (back.pool, back.node, back.pod, back.address) == (
        "gpu",
        "node-2",
        "probe-gpu-1",
        "10.0.0.9",
    )


@pytest.mark.parametrize(
    ("log", "message"),
    [
        ('{"schema": "aksflight-probe/1", "observations": {}}', "no list of observations"),
        ('{"schema": "aksflight-probe/1", "observations": [{"status": "ok"}]}', "bad field"),
        (
            '{"schema": "aksflight-probe/1", "observations": [{"check_id": "a", "status": "odd"}]}',
            "bad field",
        ),
        ('{"schema": "other/1"}', "no aksflight-probe/1 document"),
    ],
)
def test_a_bad_document_is_one_error(log: str, message: str) -> None:
    with pytest.raises(ProbeOutputError, match=message):
        parse_report(log)


@pytest.mark.fakekube(nodes=1)
def test_a_pod_without_a_network_is_a_timeout_with_its_warning_event(fakekube: Any) -> None:
    simulate(fakekube, "nodepool1", mode="pending")
    core = client.CoreV1Api(fakekube.api_client())

    def no_cni(message: str) -> None:
        if not message.startswith("created Job"):
            return
        pod = fakekube.store.list("Pod")[0]
        meta = pod["metadata"]
        core.create_namespaced_event(
            meta["namespace"],
            {
                "metadata": {"name": f"{meta['name']}.sandbox"},
                "involvedObject": {
                    "kind": "Pod",
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                },
                "reason": "FailedCreatePodSandBox",
                "message": 'plugin type="azure-vnet" failed (add): no IP addresses available',
                "type": "Warning",
            },
        )

    launcher: Launcher = _launcher(fakekube, timeout_s=1.5, on_progress=no_cni)
    outcome = launcher.run().outcomes[0]

    assert outcome.reason == "Timeout"
    assert 'FailedCreatePodSandBox: plugin type="azure-vnet" failed' in outcome.problem


def test_the_runner_column_is_shown_but_does_not_decide() -> None:
    plan = lab_plan()
    failing_here = evaluate(
        plan, all_ok(plan, dns=Observation("dns:mcr.microsoft.com", ProbeStatus.NXDOMAIN, 1.0))
    )
    fine = evaluate(plan, all_ok(plan))
    comparison = Comparison(
        plan, (Column("here", "runner", failing_here), Column("pool a", "pool", fine))
    )
    assert comparison.verdict is Status.PASS
    assert next(r.check_id for r in comparison.rows() if r.differs) == "dns:mcr.microsoft.com"
