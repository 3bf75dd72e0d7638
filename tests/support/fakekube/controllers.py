"""The controller simulation: Deployment → ReplicaSet → Pods, Job → Pods, Service →
Endpoints and EndpointSlice, Namespace → default ServiceAccount. Runs synchronously
after each write, so when a client call returns the cluster has settled."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping

from .api import Api
from .endpoints import EndpointsController
from .events import add_node, record_event
from .hooks import PodLogs
from .jobs import JobController
from .kubelet import Kubelet, PodBehaviour, PodRule, is_ready
from .objects import clone, now, random_suffix
from .ownership import controller_of, create_pod, owned, owner_ref, template_hash
from .resources import ResourceType
from .store import Obj, StoreEvent

FAKE_CA = "-----BEGIN CERTIFICATE-----\nZmFrZQ==\n-----END CERTIFICATE-----\n"
WORKLOAD_KINDS = frozenset({"Deployment", "ReplicaSet", "Job", "Pod", "Service"})


def _keep_times(new: list[Obj], old: list[Obj]) -> list[Obj]:
    """Conditions that did not change keep their timestamps, so status writes settle."""
    previous = {c["type"]: c for c in old}
    kept = []
    for cond in new:
        before = previous.get(cond["type"])
        if before and all(before.get(k) == cond.get(k) for k in ("status", "reason", "message")):
            kept.append(before)
        else:
            kept.append(cond)
    return kept


def _max_unavailable(deployment: Obj, desired: int) -> int:
    rolling = (deployment["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    value = rolling.get("maxUnavailable", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return desired * int(value[:-1]) // 100
    return int(value)


class Controllers:
    """Reacts to store changes; ``enabled`` switches the workload simulation off."""

    def __init__(self, api: Api, logs: PodLogs, enabled: bool = True) -> None:
        self.api = api
        self.enabled = enabled
        self.kubelet = Kubelet(api, logs)
        self.jobs = JobController(api)
        self.endpoints = EndpointsController(api)
        self.expired_deadlines: set[tuple[str, str]] = set()
        self._queue: deque[StoreEvent] = deque()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._types: dict[str, ResourceType] = {
            k: api.registry.resolve(k)
            for k in (
                "Deployment",
                "ReplicaSet",
                "Pod",
                "Job",
                "Service",
                "Endpoints",
                "EndpointSlice",
                "ServiceAccount",
                "ConfigMap",
            )
        }
        api.store.subscribe(self._queue.append)
        api.on_settle(self.run_pending)

    # --- test-facing steering ----------------------------------------------------

    def add_node(self, name: str, cpu: str = "4", memory: str = "16Gi") -> Obj:
        return add_node(self.api, name, cpu, memory)

    def set_pod_behaviour(
        self,
        mode: str,
        *,
        name_prefix: str = "",
        labels: Mapping[str, str] | None = None,
        namespace: str = "",
        owner_name_prefix: str = "",
        log: str = "",
        exit_code: int = 1,
        message: str = "",
    ) -> PodRule:
        """Pods matching every given criterion start in ``mode`` (newest rule wins)."""
        rule = PodRule(
            PodBehaviour(mode, log, exit_code, message),
            name_prefix,
            dict(labels or {}),
            namespace,
            owner_name_prefix,
        )
        self.kubelet.rules.append(rule)
        return rule

    def clear_pod_behaviours(self) -> None:
        self.kubelet.rules.clear()

    def restart_pods(self, namespace: str | None = None) -> None:
        """Run the kubelet again on every pod that has not finished (after changing rules)."""
        with self.api.writing():
            for pod in self.api.store.list(self._types["Pod"], namespace):
                if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                    self.kubelet.run(pod, force=True)

    def expire_progress_deadline(self, namespace: str, name: str) -> None:
        """Make an unfinished rollout report ProgressDeadlineExceeded, as after the deadline."""
        self.expired_deadlines.add((namespace, name))
        with self.api.writing():
            self._deployment(namespace, name)

    def resync(self) -> None:
        """Reconcile every workload, e.g. after switching ``enabled`` back on."""
        with self.api.writing():
            for kind in ("Deployment", "ReplicaSet", "Job", "Service"):
                for obj in self.api.store.list(self._types[kind]):
                    self._reconcile(
                        kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
                    )
            for pod in self.api.store.list(self._types["Pod"]):
                self.kubelet.run(pod)

    # --- the loop ----------------------------------------------------------------

    def run_pending(self) -> None:
        if getattr(self._local, "running", False):
            return
        self._local.running = True
        try:
            with self._lock:
                while self._queue:
                    self._handle(self._queue.popleft())
        finally:
            self._local.running = False

    def _handle(self, event: StoreEvent) -> None:
        kind = event.resource.kind
        meta = event.object["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        if kind == "Namespace" and event.type == "ADDED":
            self._namespace(name)
        if not self.enabled or kind not in WORKLOAD_KINDS:
            return
        if kind == "Pod":
            if event.type == "ADDED":
                current = self.api.store.find(self._types["Pod"], name, ns)
                if current is not None:
                    self.kubelet.run(current)
            owner = controller_of(event.object)
            if owner is not None and owner.get("kind") in ("ReplicaSet", "Job"):
                self._reconcile(owner["kind"], ns, owner["name"])
            self.endpoints.reconcile_namespace(ns)
        elif kind == "Service" and event.type == "DELETED":
            if self.api.store.find(self._types["Endpoints"], name, ns) is not None:
                self.api.delete(self._types["Endpoints"], name, ns)
        elif event.type != "DELETED":
            self._reconcile(kind, ns, name)

    def _reconcile(self, kind: str, ns: str, name: str) -> None:
        handler = {
            "Deployment": self._deployment,
            "ReplicaSet": self._replicaset,
            "Job": self.jobs.reconcile,
            "Service": self.endpoints.reconcile,
        }[kind]
        handler(ns, name)

    # --- namespaces --------------------------------------------------------------

    def _namespace(self, name: str) -> None:
        if self.api.store.find(self._types["ServiceAccount"], "default", name) is None:
            self.api.create(self._types["ServiceAccount"], {"metadata": {"name": "default"}}, name)
        if self.api.store.find(self._types["ConfigMap"], "kube-root-ca.crt", name) is None:
            self.api.create(
                self._types["ConfigMap"],
                {
                    "metadata": {"name": "kube-root-ca.crt"},
                    "data": {"ca.crt": FAKE_CA},
                },
                name,
            )

    # --- deployments -------------------------------------------------------------

    def _deployment(self, ns: str, name: str) -> None:
        deployment = self.api.store.find(self._types["Deployment"], name, ns)
        if deployment is None or deployment["metadata"].get("deletionTimestamp"):
            return
        spec = deployment["spec"]
        desired = int(spec.get("replicas", 1))
        template = clone(spec["template"])
        pod_hash = template_hash(template)
        replica_sets = owned(self.api, self._types["ReplicaSet"], deployment)
        new_rs = next(
            (
                rs
                for rs in replica_sets
                if rs["metadata"].get("labels", {}).get("pod-template-hash") == pod_hash
            ),
            None,
        )
        revisions = [
            int(rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", "0"))
            for rs in replica_sets
        ]
        rs_type = self._types["ReplicaSet"]
        if new_rs is None:
            labels = {
                **(template.get("metadata", {}).get("labels") or {}),
                "pod-template-hash": pod_hash,
            }
            template.setdefault("metadata", {})["labels"] = labels
            selector = clone(spec["selector"])
            selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
            new_rs = self.api.create(
                rs_type,
                {
                    "metadata": {
                        "name": f"{name}-{pod_hash}",
                        "labels": labels,
                        "annotations": {
                            "deployment.kubernetes.io/desired-replicas": str(desired),
                            "deployment.kubernetes.io/max-replicas": str(desired + 1),
                            "deployment.kubernetes.io/revision": str(max(revisions, default=0) + 1),
                        },
                        "ownerReferences": [owner_ref(deployment)],
                    },
                    "spec": {"replicas": desired, "selector": selector, "template": template},
                },
                ns,
            )
            record_event(
                self.api,
                deployment,
                "ScalingReplicaSet",
                f"Scaled up replica set {new_rs['metadata']['name']} from 0 to {desired}",
                "Normal",
                component="deployment-controller",
            )
        elif new_rs["spec"].get("replicas") != desired:
            self.api.patch(
                rs_type,
                new_rs["metadata"]["name"],
                "application/merge-patch+json",
                {"spec": {"replicas": desired}},
                ns,
            )
        new_rs = self.api.store.find(rs_type, new_rs["metadata"]["name"], ns) or new_rs
        new_status = new_rs.get("status") or {}
        if new_status.get("availableReplicas", 0) >= desired:
            for old in replica_sets:
                if old["metadata"]["uid"] != new_rs["metadata"]["uid"] and old["spec"].get(
                    "replicas"
                ):
                    self.api.patch(
                        rs_type,
                        old["metadata"]["name"],
                        "application/merge-patch+json",
                        {"spec": {"replicas": 0}},
                        ns,
                    )
        self._deployment_status(deployment, new_rs, desired)

    def _deployment_status(self, deployment: Obj, new_rs: Obj, desired: int) -> None:
        meta = deployment["metadata"]
        ns = meta.get("namespace", "")
        all_rs = owned(self.api, self._types["ReplicaSet"], deployment)
        total = sum((rs.get("status") or {}).get("replicas", 0) for rs in all_rs)
        ready = sum((rs.get("status") or {}).get("readyReplicas", 0) for rs in all_rs)
        available = sum((rs.get("status") or {}).get("availableReplicas", 0) for rs in all_rs)
        current = next(
            (rs for rs in all_rs if rs["metadata"]["uid"] == new_rs["metadata"]["uid"]), new_rs
        )
        updated = (current.get("status") or {}).get("replicas", 0)
        new_available = (current.get("status") or {}).get("availableReplicas", 0)
        rs_name = current["metadata"]["name"]
        complete = updated == desired and new_available == desired and total == desired
        is_available = available >= desired - _max_unavailable(deployment, desired)
        if complete:
            progressing = (
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
            )
        elif (ns, meta["name"]) in self.expired_deadlines:
            progressing = (
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs_name}" has timed out progressing.',
            )
        else:
            progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        stamp = now()
        conditions = [
            {
                "type": "Available",
                "status": "True" if is_available else "False",
                "reason": "MinimumReplicasAvailable"
                if is_available
                else "MinimumReplicasUnavailable",
                "message": "Deployment has minimum availability."
                if is_available
                else "Deployment does not have minimum availability.",
                "lastUpdateTime": stamp,
                "lastTransitionTime": stamp,
            },
            {
                "type": "Progressing",
                "status": progressing[0],
                "reason": progressing[1],
                "message": progressing[2],
                "lastUpdateTime": stamp,
                "lastTransitionTime": stamp,
            },
        ]
        status: Obj = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "conditions": _keep_times(
                conditions, (deployment.get("status") or {}).get("conditions") or []
            ),
        }
        status = {k: v for k, v in status.items() if v != 0 or k == "observedGeneration"}
        if desired - available > 0:
            status["unavailableReplicas"] = desired - available
        fresh = self.api.store.find(self._types["Deployment"], meta["name"], ns)
        if fresh is not None:
            fresh["status"] = status
            self.api.update_status(self._types["Deployment"], fresh)

    # --- replica sets ------------------------------------------------------------

    def _replicaset(self, ns: str, name: str) -> None:
        rs = self.api.store.find(self._types["ReplicaSet"], name, ns)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        pod_type = self._types["Pod"]
        desired = int(rs["spec"].get("replicas", 1))
        pods = [
            p
            for p in owned(self.api, self._types["Pod"], rs)
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")
        ]
        for _ in range(desired - len(pods)):
            pods.append(create_pod(self.api, self._types["Pod"], rs, f"{name}-{random_suffix()}"))
        if len(pods) > desired:
            pods.sort(key=lambda p: (is_ready(p), p["metadata"]["creationTimestamp"]))
            for extra in pods[: len(pods) - desired]:
                self.api.delete(pod_type, extra["metadata"]["name"], ns)
            pods = pods[len(pods) - desired :]
        pods = [self.api.store.find(pod_type, p["metadata"]["name"], ns) or p for p in pods]
        ready = sum(1 for p in pods if is_ready(p))
        status = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        fresh = self.api.store.find(self._types["ReplicaSet"], name, ns)
        if fresh is not None:
            fresh["status"] = {
                k: v for k, v in status.items() if v != 0 or k in ("replicas", "observedGeneration")
            }
            self.api.update_status(self._types["ReplicaSet"], fresh)
        owner = controller_of(rs)
        if owner is not None and owner.get("kind") == "Deployment":
            self._deployment(ns, owner["name"])
