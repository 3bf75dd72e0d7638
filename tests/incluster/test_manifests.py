"""The rendered manifests: valid for the Kubernetes schema in strict mode (no unknown
field), least privilege, bounded in time."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from preflight.incluster import RunRequest, all_manifests, in_cluster_plan, launch_spec
from preflight.incluster.manifests import ProbeTarget, job_name
from preflight.kube import DISCOVERY_ACCESS
from rules.catalogue import requirements_for
from rules.model import Phase
from rules.plan import build_plan
from tests.conftest import example_config
from tests.incluster.support import IMAGE, lab_plan

TARGETS = (
    ProbeTarget("system", "system", {"kubernetes.azure.com/agentpool": "system"}),
    ProbeTarget(
        "aks-gpu-12345678-vmss000000",
        "gpu",
        {"kubernetes.io/hostname": "aks-gpu-12345678-vmss000000"},
        node="aks-gpu-12345678-vmss000000",
    ),
)


def _manifests(phases: list[Phase] | None = None) -> list[dict[str, Any]]:
    plan = in_cluster_plan(build_plan(requirements_for(example_config("lab.yaml")), phases))
    request = RunRequest(
        image=IMAGE, config_text="region: eastus\n", catalogue_texts=["x: 1\n"], timeout_s=90
    )
    return all_manifests(launch_spec(request, plan, TARGETS, run_id="abc123"))


@pytest.mark.parametrize("phases", [None, [Phase.ROUTER_INSTALL]], ids=["all", "no-api"])
def test_every_manifest_validates_strictly(phases: list[Phase] | None) -> None:
    for manifest in _manifests(phases):
        kubernetes_validate.validate(manifest, "1.30", strict=True)


def test_the_role_allows_exactly_what_discovery_rbac_asks() -> None:
    role = next(m for m in _manifests() if m["kind"] == "Role")
    granted = {
        (verb, resource, group)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == set(DISCOVERY_ACCESS)
    binding = next(m for m in _manifests() if m["kind"] == "RoleBinding")
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": "aksflight-probe",
            "namespace": role["metadata"]["namespace"],
        }
    ]


def test_jobs_run_once_bounded_pinned_and_unprivileged() -> None:
    jobs = [m for m in _manifests() if m["kind"] == "Job"]
    assert [j["spec"]["template"]["spec"]["nodeSelector"] for j in jobs] == [
        dict(t.node_selector) for t in TARGETS
    ]
    for job in jobs:
        spec = job["spec"]
        assert spec["backoffLimit"] == 0
        assert spec["activeDeadlineSeconds"] == 120
        assert spec["ttlSecondsAfterFinished"] > 0
        pod = spec["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        container = pod["containers"][0]
        assert container["image"] == IMAGE
        assert container["args"][:3] == ["probe", "-c", "/etc/aksflight/config.yaml"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert {p["containerPort"] for p in container["ports"]} == {8080, 5001}


def test_the_config_travels_in_a_config_map() -> None:
    config_map = next(m for m in _manifests() if m["kind"] == "ConfigMap")
    assert config_map["data"] == {"config.yaml": "region: eastus\n", "catalogue-0.yaml": "x: 1\n"}
    job = next(m for m in _manifests() if m["kind"] == "Job")
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--catalogue") + 1] == "/etc/aksflight/catalogue-0.yaml"


def test_job_names_are_short_distinct_dns_labels() -> None:
    long = ProbeTarget("x" * 80 + "_Pool", "p", {})
    other = ProbeTarget("x" * 80 + "-pool", "p", {})
    assert len(job_name(long)) <= 52 and job_name(long) != job_name(other)
    assert job_name(ProbeTarget("___", "p", {})).startswith("probe-")


def test_the_in_cluster_plan_adds_the_cluster_dns_check_and_unskips_peers() -> None:
    plan = lab_plan()
    dns = plan.checks["dns:kubernetes.default.svc.cluster.local"]
    assert dns.phase is Phase.ROUTER_STARTUP
    assert plan.checks["peer:router"].unprobeable_reason is None
    assert "phase:router-install" in plan.prerequisites(dns.id)
    assert dns.id in plan.prerequisites("phase:router-startup")
