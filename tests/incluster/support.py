"""Helpers for the in-cluster tests: a cluster of two node pools on the fake API server,
and observation documents as a probe pod would print them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client

from preflight.incluster import ProbeReport, dump_report, in_cluster_plan
from preflight.incluster.manifests import POOL_LABEL
from rules.model import CheckKind, Observation, ProbeStatus
from rules.plan import Plan
from tests.conftest import example_plan

IMAGE = "registry.example.test/aksflight:0.1.0"


def lab_plan() -> Plan:
    return in_cluster_plan(example_plan("lab.yaml"))


def two_pools(kube: Any) -> None:
    """node-1 in pool `system`, node-2 in pool `gpu` (the fake starts nodes in nodepool1)."""
    core = client.CoreV1Api(kube.api_client())
    core.patch_node("node-1", {"metadata": {"labels": {"agentpool": "system"}}})
    core.patch_node("node-2", {"metadata": {"labels": {"agentpool": "gpu"}}})


def all_ok(plan: Plan, **overrides: Observation) -> dict[str, Observation]:
    """An OK observation for every check of `plan`, with DNS answers, then `overrides`."""
    out = {}
    for check in plan.checks.values():
        evidence: dict[str, Any] = {}
        if check.kind is CheckKind.DNS:
            evidence = {"addresses": ["20.1.2.3"], "address_classes": {"20.1.2.3": "public"}}
        out[check.id] = Observation(check.id, ProbeStatus.OK, 1.0, "", evidence)
    out.update({o.check_id: o for o in overrides.values()})
    return out


def report_log(pool: str, observations: Mapping[str, Observation]) -> str:
    report = ProbeReport(pool=pool, node="", pod="", observations=observations, duration_s=1.0)
    return "starting probes\n" + dump_report(report) + "\n"


def simulate(kube: Any, pool: str, mode: str = "succeeded", log: str = "") -> None:
    kube.controllers.set_pod_behaviour(mode, labels={POOL_LABEL: pool}, log=log)


def leftovers(kube: Any, namespace_prefix: str = "aksflight-preflight") -> list[str]:
    """Every object in the store that an in-cluster run could have made."""
    found = []
    for kind in ("Namespace", "Job", "Pod", "ServiceAccount", "Role", "RoleBinding", "ConfigMap"):
        for obj in kube.store.list(kind):
            meta = obj["metadata"]
            name = meta.get("namespace") or meta["name"]
            if name.startswith(namespace_prefix):
                found.append(f"{kind} {meta.get('namespace', '')}/{meta['name']}")
    return found
