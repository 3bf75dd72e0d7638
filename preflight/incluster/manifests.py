"""The objects an in-cluster run creates, rendered as plain manifests (dicts).

Everything lives in one namespace made for the run, so deleting it deletes all of it.
Least privilege: the service account's token is mounted only when the plan has checks
that need the API (then a Role allows exactly what `k8s:discovery-rbac` asks, in this
namespace only); the pods run as non-root with a read-only root file system and no
capabilities; each Job runs once (`backoffLimit: 0`), is bounded in time
(`activeDeadlineSeconds`) and cleans itself up if the launcher could not
(`ttlSecondsAfterFinished`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from preflight.kube import DISCOVERY_ACCESS

APP_LABEL = "app.kubernetes.io/name"
APP_NAME = "aksflight-probe"
RUN_LABEL = "aksflight.io/run"
TARGET_LABEL = "aksflight.io/target"
POOL_LABEL = "aksflight.io/pool"
MANAGED_BY = {"app.kubernetes.io/managed-by": "aksflight"}
SERVICE_ACCOUNT = "aksflight-probe"
CONFIG_MAP = "aksflight-probe-config"
CONFIG_DIR = "/etc/aksflight"
CONTAINER = "probe"
HOSTNAME_LABEL = "kubernetes.io/hostname"
# The finished Jobs' own clean-up, should the launcher have been killed outright.
TTL_AFTER_FINISHED_S = 600


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """Where one Job runs: a node pool, or one node (`node` set)."""

    name: str
    pool: str
    node_selector: Mapping[str, str]
    node: str | None = None


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """Everything the manifests depend on."""

    image: str
    namespace: str
    run_id: str
    targets: tuple[ProbeTarget, ...]
    probe_args: tuple[str, ...]
    config_files: Mapping[str, str]
    timeout_s: float
    needs_api: bool
    ports: Sequence[int] = ()
    image_pull_policy: str = "IfNotPresent"
    extra_labels: Mapping[str, str] = field(default_factory=dict)


def label_value(text: str) -> str:
    """`text` as a valid label value: at most 63 of [A-Za-z0-9._-], alphanumeric ends."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", text)[:63].strip("._-")
    return cleaned or "none"


def job_name(target: ProbeTarget) -> str:
    """A DNS label short enough for the pod names the Job controller derives from it."""
    slug = re.sub(r"[^a-z0-9-]", "-", target.name.lower()).strip("-")[:30].strip("-")
    digest = hashlib.sha256(target.name.encode()).hexdigest()[:6]
    return f"probe-{slug}-{digest}" if slug else f"probe-{digest}"


def _labels(spec: LaunchSpec, **more: str) -> dict[str, str]:
    return {
        APP_LABEL: APP_NAME,
        RUN_LABEL: spec.run_id,
        **MANAGED_BY,
        **dict(spec.extra_labels),
        **more,
    }


def run_selector(spec: LaunchSpec) -> str:
    return f"{APP_LABEL}={APP_NAME},{RUN_LABEL}={spec.run_id}"


def namespace_manifest(spec: LaunchSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": spec.namespace, "labels": _labels(spec)},
    }


def service_account_manifest(spec: LaunchSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": SERVICE_ACCOUNT, "namespace": spec.namespace, "labels": _labels(spec)},
        "automountServiceAccountToken": spec.needs_api,
    }


def role_manifest(spec: LaunchSpec) -> dict[str, Any]:
    """What `k8s:discovery-rbac` asks for (the router's discovery), in this namespace only.
    The pods find each other with the same `list pods`."""
    by_group: dict[str, dict[str, set[str]]] = {}
    for verb, resource, group in DISCOVERY_ACCESS:
        by_group.setdefault(group, {}).setdefault(resource, set()).add(verb)
    rules = [
        {"apiGroups": [group], "resources": [resource], "verbs": sorted(verbs)}
        for group, resources in sorted(by_group.items())
        for resource, verbs in sorted(resources.items())
    ]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": SERVICE_ACCOUNT, "namespace": spec.namespace, "labels": _labels(spec)},
        "rules": rules,
    }


def role_binding_manifest(spec: LaunchSpec) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": SERVICE_ACCOUNT, "namespace": spec.namespace, "labels": _labels(spec)},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": SERVICE_ACCOUNT,
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": spec.namespace}
        ],
    }


def config_map_manifest(spec: LaunchSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "namespace": spec.namespace, "labels": _labels(spec)},
        "data": dict(spec.config_files),
    }


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def job_manifest(spec: LaunchSpec, target: ProbeTarget) -> dict[str, Any]:
    labels = _labels(
        spec, **{TARGET_LABEL: label_value(target.name), POOL_LABEL: label_value(target.pool)}
    )
    env = [
        _field_env("POD_NAME", "metadata.name"),
        _field_env("POD_NAMESPACE", "metadata.namespace"),
        _field_env("POD_IP", "status.podIP"),
        _field_env("NODE_NAME", "spec.nodeName"),
        {"name": "AKSFLIGHT_POOL", "value": target.pool},
        {"name": "HOME", "value": "/tmp"},  # noqa: S108 (an emptyDir, the only writable path)
    ]
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "args": list(spec.probe_args),
        "env": env,
        "ports": [{"containerPort": p, "protocol": "TCP"} for p in spec.ports],
        "resources": {
            "requests": {"cpu": "50m", "memory": "96Mi"},
            "limits": {"memory": "256Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108
        ],
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": SERVICE_ACCOUNT,
        "automountServiceAccountToken": spec.needs_api,
        "nodeSelector": dict(target.node_selector),
        # Every pool, also tainted ones (GPU, system): the point is to test from each.
        "tolerations": [{"operator": "Exists"}],
        "terminationGracePeriodSeconds": 5,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": CONFIG_MAP}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(target), "namespace": spec.namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": max(int(spec.timeout_s) + 30, 60),
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED_S,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def all_manifests(spec: LaunchSpec) -> list[dict[str, Any]]:
    """In creation order: the namespace first, the Jobs last."""
    out = [namespace_manifest(spec), service_account_manifest(spec)]
    if spec.needs_api:
        out += [role_manifest(spec), role_binding_manifest(spec)]
    out.append(config_map_manifest(spec))
    out += [job_manifest(spec, target) for target in spec.targets]
    return out
