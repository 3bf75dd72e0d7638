"""The launcher against the strict fake API server: Job pods whose logs carry
observations, pods that cannot start, the total timeout, and cleanup."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kubernetes import client

from preflight.incluster import (
    InClusterError,
    Launcher,
    RunRequest,
    judge_outcome,
    launch_spec,
    list_targets,
)
from preflight.incluster.manifests import SERVICE_ACCOUNT
from reports.comparison import Column, Comparison, comparison_document, comparison_table
from rules.evaluate import evaluate
from rules.model import Observation, ProbeStatus, Status
from tests.incluster.support import (
    IMAGE,
    all_ok,
    lab_plan,
    leftovers,
    report_log,
    simulate,
    two_pools,
)

pytestmark = pytest.mark.fakekube(nodes=2)
MCR = "dns:mcr.microsoft.com"


def _launcher(kube: Any, timeout_s: float = 10.0, **kwargs: Any) -> Launcher:
    plan = lab_plan()
    api = kube.api_client()
    targets = list_targets(api, [], per_node=False)
    request = RunRequest(image=IMAGE, config_text="region: eastus\n", timeout_s=timeout_s)
    kwargs.setdefault("stuck_grace_s", 0.3)
    return Launcher(api, launch_spec(request, plan, targets), **kwargs)


def test_pools_that_disagree_show_in_the_table_and_the_json(fakekube: Any) -> None:
    two_pools(fakekube)
    plan = lab_plan()
    nxdomain = Observation(MCR, ProbeStatus.NXDOMAIN, 2.0, "mcr.microsoft.com does not exist")
    simulate(fakekube, "system", log=report_log("system", all_ok(plan)))
    simulate(fakekube, "gpu", log=report_log("gpu", all_ok(plan, mcr=nxdomain)))

    run = _launcher(fakekube).run()

    results = {r.name: r for r in (judge_outcome(plan, o) for o in run.outcomes)}
    assert set(results) == {"system", "gpu"}
    here = evaluate(plan, all_ok(plan))
    comparison = Comparison(
        plan=plan,
        columns=(
            Column("here", "runner", here),
            Column("pool system", "pool", results["system"].evaluation),
            Column("pool gpu", "pool", results["gpu"].evaluation),
        ),
    )
    document = comparison_document(comparison)
    assert document["verdict"] == "fail"
    assert document["differs"][0] == MCR  # and what waits on it, blocked only in gpu
    row = next(c for c in document["checks"] if c["id"] == MCR)
    assert row["results"]["here"]["status"] == "pass"
    assert row["results"]["pool system"]["status"] == "pass"
    assert row["results"]["pool gpu"]["status"] == "fail"
    assert row["results"]["pool gpu"]["probe_status"] == "nxdomain"
    blocked = next(c for c in document["checks"] if c["id"] == "tcp:mcr.microsoft.com:443")
    assert blocked["results"]["pool gpu"] == {
        "status": "blocked",
        "reason": f"not run: waits on {MCR}, which failed",
        "blocked_by": MCR,
    }
    same = next(
        c for c in document["checks"] if c["id"] == "dns:lab-aks-00000000.hcp.eastus.azmk8s.io"
    )
    assert not same["differs"]
    table = comparison_table(comparison)
    mcr_line = next(line for line in table.splitlines() if line.split()[1:2] == [MCR])
    assert mcr_line.split() == ["≠", MCR, "pass", "pass", "fail"]
    assert "pool gpu: fail: nxdomain: mcr.microsoft.com does not exist" in table
    json.dumps(document)  # serialisable as it stands
    assert leftovers(fakekube) == []


def test_a_pod_stuck_in_image_pull_backoff_is_a_finding_within_the_timeout(fakekube: Any) -> None:
    two_pools(fakekube)
    plan = lab_plan()
    simulate(fakekube, "system", log=report_log("system", all_ok(plan)))
    simulate(fakekube, "gpu", mode="image-pull-backoff")
    started = time.monotonic()

    run = _launcher(fakekube, timeout_s=10.0).run()

    assert time.monotonic() - started < 10.0
    by_name = {o.target.name: o for o in run.outcomes}
    assert by_name["system"].report is not None
    stuck = by_name["gpu"]
    assert stuck.report is None and stuck.reason == "ImagePullBackOff"
    assert IMAGE in stuck.problem
    finding = judge_outcome(plan, stuck).problem
    assert finding is not None
    assert finding.check.id == "cluster:probe-pod:gpu"
    assert finding.status is Status.FAIL
    assert "mirror" in finding.remediation
    assert leftovers(fakekube) == []


def test_a_pod_that_never_finishes_times_out_and_is_named(fakekube: Any) -> None:
    two_pools(fakekube)
    plan = lab_plan()
    simulate(fakekube, "system", log=report_log("system", all_ok(plan)))
    simulate(fakekube, "gpu", mode="pending")
    started = time.monotonic()

    run = _launcher(fakekube, timeout_s=2.0).run()

    assert time.monotonic() - started < 2.0 + 3.0  # one watch window and the cleanup
    timed_out = next(o for o in run.outcomes if o.target.name == "gpu")
    assert timed_out.reason == "Timeout"
    assert "did not finish within 2 s (starting: ContainerCreating" in timed_out.problem
    assert leftovers(fakekube) == []


def test_unschedulable_and_init_failures_are_findings(fakekube: Any) -> None:
    two_pools(fakekube)
    simulate(fakekube, "system", mode="unschedulable")
    simulate(fakekube, "gpu", mode="crash-loop")

    run = _launcher(fakekube).run()

    reasons = {o.target.name: o.reason for o in run.outcomes}
    assert reasons == {"system": "Unschedulable", "gpu": "CrashLoopBackOff"}
    unschedulable = next(o for o in run.outcomes if o.target.name == "system")
    assert "Insufficient cpu" in unschedulable.problem


def test_a_log_without_observations_is_a_finding(fakekube: Any) -> None:
    two_pools(fakekube)
    simulate(fakekube, "system", log="Traceback (most recent call last):\nboom\n")
    simulate(fakekube, "gpu", mode="failed", log="")

    run = _launcher(fakekube).run()

    outcome = {o.target.name: o for o in run.outcomes}
    assert outcome["system"].reason == "NoOutput"
    assert "last line: boom" in outcome["system"].problem
    assert outcome["gpu"].reason == "NoOutput"
    assert "the log is empty" in outcome["gpu"].problem


def test_ctrl_c_while_watching_deletes_everything(fakekube: Any) -> None:
    two_pools(fakekube)
    simulate(fakekube, "system", mode="pending")
    simulate(fakekube, "gpu", mode="pending")
    seen: list[str] = []

    def interrupt(message: str) -> None:
        seen.append(message)
        if message.startswith("created Job") and len([m for m in seen if "Job" in m]) == 2:
            assert fakekube.store.list("Pod", None)  # the pods exist when Ctrl-C comes
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _launcher(fakekube, on_progress=interrupt).run()

    assert leftovers(fakekube) == []
    deletes = fakekube.requests.matching("DELETE", "/api/v1/namespaces/aksflight-preflight-*")
    assert len(deletes) == 1


def test_the_namespace_of_someone_else_is_never_adopted_or_deleted(fakekube: Any) -> None:
    launcher = _launcher(fakekube)
    namespace = launcher.spec.namespace
    client.CoreV1Api(fakekube.api_client()).create_namespace({"metadata": {"name": namespace}})

    with pytest.raises(InClusterError, match=f"namespace {namespace} already exists"):
        launcher.run()

    assert fakekube.store.find("Namespace", namespace) is not None
    assert fakekube.requests.matching("DELETE", "*") == []


def test_no_token_and_no_role_when_the_plan_needs_no_api(fakekube: Any) -> None:
    from preflight.incluster import in_cluster_plan
    from rules.catalogue import requirements_for
    from rules.model import Phase
    from rules.plan import build_plan
    from tests.conftest import example_config

    plan = in_cluster_plan(
        build_plan(requirements_for(example_config("lab.yaml")), [Phase.ROUTER_INSTALL])
    )
    api = fakekube.api_client()
    request = RunRequest(image=IMAGE, config_text="x", timeout_s=10)
    spec = launch_spec(request, plan, list_targets(api, [], per_node=False))
    simulate(fakekube, "nodepool1", log=report_log("nodepool1", all_ok(plan)))
    created: list[dict[str, Any]] = []
    fakekube.store.subscribe(
        lambda event: created.append(event.object) if event.type == "ADDED" else None
    )

    Launcher(api, spec).run()

    kinds = {o["kind"] for o in created if o["metadata"].get("namespace") == spec.namespace}
    assert "Role" not in kinds and "RoleBinding" not in kinds
    account = next(
        o
        for o in created
        if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == SERVICE_ACCOUNT
    )
    assert account["automountServiceAccountToken"] is False
    pod = next(o for o in created if o["kind"] == "Pod")
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert leftovers(fakekube) == []


def test_an_unknown_node_pool_names_the_known_ones(fakekube: Any) -> None:
    two_pools(fakekube)
    with pytest.raises(InClusterError, match=r"no node in pool spot \(pools: gpu, system\)"):
        list_targets(fakekube.api_client(), ["spot"], per_node=False)


def test_per_node_pins_each_job_by_host_name(fakekube: Any) -> None:
    targets = list_targets(fakekube.api_client(), [], per_node=True)
    assert [(t.name, dict(t.node_selector)) for t in targets] == [
        ("node-1", {"kubernetes.io/hostname": "node-1"}),
        ("node-2", {"kubernetes.io/hostname": "node-2"}),
    ]


def test_a_refused_create_half_way_deletes_what_was_made(fakekube: Any) -> None:
    fakekube.faults.add("POST", "*/rolebindings", 403, message="forbidden")

    with pytest.raises(InClusterError, match="cannot create RoleBinding aksflight-probe: HTTP 403"):
        _launcher(fakekube).run()

    assert fakekube.requests.matching("POST", "*/roles")  # it got that far
    assert leftovers(fakekube) == []
