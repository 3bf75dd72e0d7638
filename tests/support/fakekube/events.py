"""Events and Nodes: what the kubelet, scheduler and controllers report with."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .objects import now, random_suffix
from .store import Obj

if TYPE_CHECKING:
    from .api import Api


def condition(kind: str, status: bool, reason: str = "", message: str = "") -> Obj:
    cond: Obj = {"type": kind, "status": "True" if status else "False", "lastTransitionTime": now()}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def record_event(
    api: Api,
    obj: Obj,
    reason: str,
    message: str,
    kind: str = "Warning",
    component: str = "kubelet",
    field_path: str = "",
) -> None:
    """Record an Event about ``obj`` as the named component would."""
    meta = obj["metadata"]
    involved: Obj = {
        "kind": obj["kind"],
        "namespace": meta.get("namespace", "default"),
        "name": meta["name"],
        "uid": meta["uid"],
        "apiVersion": obj["apiVersion"],
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if field_path:
        involved["fieldPath"] = field_path
    host = (obj.get("spec") or {}).get("nodeName", "")
    stamp = now()
    event: Obj = {
        "metadata": {
            "name": f"{meta['name']}.{random_suffix(16)}",
            "namespace": involved["namespace"],
        },
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": kind,
        "source": {"component": component, **({"host": host} if host else {})},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "reportingComponent": component,
        "reportingInstance": host or component,
    }
    api.create(api.registry.resolve("events"), event)


def add_node(api: Api, name: str, cpu: str = "4", memory: str = "16Gi") -> Obj:
    count = len(api.store.list("nodes")) + 1
    node = {
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "agentpool": "nodepool1",
                "node.kubernetes.io/instance-type": "Standard_D4s_v5",
            },
        },
        "spec": {"podCIDR": f"10.244.{count - 1}.0/24"},
    }
    created = api.create(api.registry.resolve("nodes"), node)
    resources = {"cpu": cpu, "memory": memory, "pods": "110"}
    created["status"] = {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [condition("Ready", True, "KubeletReady", "kubelet is posting ready status")],
        "addresses": [
            {"type": "InternalIP", "address": f"10.224.0.{count + 3}"},
            {"type": "Hostname", "address": name},
        ],
        "nodeInfo": {
            "architecture": "amd64",
            "bootID": created["metadata"]["uid"],
            "containerRuntimeVersion": "containerd://1.7.20",
            "kernelVersion": "5.15.0-1070-azure",
            "kubeProxyVersion": "",
            "kubeletVersion": f"v{api.schemas.version}.0",
            "machineID": created["metadata"]["uid"].replace("-", ""),
            "operatingSystem": "linux",
            "osImage": "Ubuntu 22.04.4 LTS",
            "systemUUID": created["metadata"]["uid"],
        },
    }
    return api.update_status(api.registry.resolve("nodes"), created)
