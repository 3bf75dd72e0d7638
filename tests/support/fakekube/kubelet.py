"""The simulated kubelet and scheduler: how a pod's status evolves, including the
failures a test injects (image pull errors, crash loops, unschedulable, init failures),
with the Events a real node would record for them."""

from __future__ import annotations

import hashlib
import ipaddress
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import FakeKubeError
from .events import condition, record_event
from .hooks import PodLogs
from .objects import clone, now
from .selectors import label_selector_matcher

if TYPE_CHECKING:
    from .api import Api

Obj = dict[str, Any]

MODES = (
    "ready",
    "pending",
    "image-pull-backoff",
    "err-image-pull",
    "crash-loop",
    "unschedulable",
    "init-failure",
    "succeeded",
    "failed",
)


@dataclass
class PodBehaviour:
    """How the fake kubelet runs the pods a rule matches.

    ``mode`` is one of MODES; ``log`` becomes the pod's log text (for every container);
    ``exit_code`` is used by the failing modes."""

    mode: str = "ready"
    log: str = ""
    exit_code: int = 1
    message: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise FakeKubeError(f"unknown pod mode {self.mode!r}; choose one of {', '.join(MODES)}")


@dataclass
class PodRule:
    """Which pods a behaviour applies to: all given criteria must match."""

    behaviour: PodBehaviour
    name_prefix: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace: str = ""
    owner_name_prefix: str = ""

    def matches(self, pod: Obj) -> bool:
        meta = pod["metadata"]
        owners = [r.get("name", "") for r in meta.get("ownerReferences") or []]
        return (
            meta["name"].startswith(self.name_prefix)
            and (not self.namespace or meta.get("namespace") == self.namespace)
            and label_selector_matcher({"matchLabels": dict(self.labels)})(meta.get("labels") or {})
            and (
                not self.owner_name_prefix
                or any(o.startswith(self.owner_name_prefix) for o in owners)
            )
        )


def _pod_id(meta: Obj) -> str:
    """How the kubelet names a pod in messages: name_namespace(uid)."""
    return f"{meta['name']}_{meta.get('namespace')}({meta['uid']})"


def _qos(spec: Obj) -> str:
    resources = [c.get("resources") or {} for c in spec.get("containers", [])]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        r.get("limits", {}).get(k)
        and r.get("requests", {}).get(k, r["limits"][k]) == r["limits"][k]
        for r in resources
        for k in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"


def _container_id(pod: Obj, name: str) -> str:
    return "containerd://" + hashlib.sha256(f"{pod['metadata']['uid']}/{name}".encode()).hexdigest()


def _image_id(image: str) -> str:
    repo = (
        image.split("@", maxsplit=1)[0].rsplit(":", 1)[0]
        if ":" in image.rsplit("/", 1)[-1]
        else image
    )
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


class Kubelet:
    """Schedules pods onto the fake nodes and writes their status per PodBehaviour."""

    def __init__(self, api: Api, logs: PodLogs) -> None:
        self.api = api
        self.logs = logs
        self.rules: list[PodRule] = []
        self.default = PodBehaviour("ready")
        self.default_job_pod = PodBehaviour("succeeded")
        self._ips = ipaddress.IPv4Network("10.244.0.0/16").hosts()
        self._lock = threading.Lock()
        self._node_cycle: Callable[[], str] | None = None
        self.pod_ip_allocator: Callable[[Obj], str] = self._next_ip
        self._pods = api.registry.resolve("pods")
        self._events = api.registry.resolve("events")

    def _next_ip(self, pod: Obj) -> str:
        with self._lock:
            return str(next(self._ips))

    def behaviour_for(self, pod: Obj) -> PodBehaviour:
        for rule in reversed(self.rules):
            if rule.matches(pod):
                return rule.behaviour
        owners = {r.get("kind") for r in pod["metadata"].get("ownerReferences") or []}
        return self.default_job_pod if "Job" in owners else self.default

    # --- nodes -------------------------------------------------------------------

    def _pick_node(self) -> str | None:
        nodes = [
            n["metadata"]["name"]
            for n in self.api.store.list("nodes")
            if not n["spec"].get("unschedulable")
        ]
        if not nodes:
            return None
        counts = {n: 0 for n in nodes}
        for pod in self.api.store.list(self._pods):
            host = pod["spec"].get("nodeName")
            if host in counts:
                counts[host] += 1
        return str(min(nodes, key=lambda n: (counts[n], n)))

    # --- events ------------------------------------------------------------------

    # --- running pods ------------------------------------------------------------

    def run(self, pod: Obj, force: bool = False) -> None:
        """Start a pod per its behaviour; only pods not yet started unless ``force``."""
        status = pod.get("status") or {}
        if not force and (status.get("conditions") or status.get("phase") not in (None, "Pending")):
            return
        if pod["metadata"].get("deletionTimestamp"):
            return
        behaviour = self.behaviour_for(pod)
        new = clone(pod)
        new["status"] = {"phase": "Pending", "qosClass": _qos(pod["spec"])}
        if (
            behaviour.mode == "unschedulable"
            or (node := pod["spec"].get("nodeName") or self._pick_node()) is None
        ):
            self._unschedulable(new, behaviour)
            return
        if pod["spec"].get("nodeName") != node:
            bound = clone(pod)
            bound["spec"]["nodeName"] = node
            pod = self.api.store.update(self._pods, bound, pod)
            new["spec"]["nodeName"] = node
            new["metadata"] = pod["metadata"]
        ip = status.get("podIP") or self.pod_ip_allocator(new)
        host_ip = self._host_ip(node)
        new["status"].update(
            {
                "hostIP": host_ip,
                "hostIPs": [{"ip": host_ip}],
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "startTime": status.get("startTime") or now(),
            }
        )
        if behaviour.log:
            self.logs.set(
                pod["metadata"].get("namespace", ""), pod["metadata"]["name"], behaviour.log
            )
        getattr(self, "_" + behaviour.mode.replace("-", "_"))(new, behaviour)
        self.api.update_status(self._pods, new)

    def _host_ip(self, node_name: str) -> str:
        node = self.api.store.find("nodes", node_name) or {}
        for address in (node.get("status") or {}).get("addresses") or []:
            if address.get("type") == "InternalIP":
                return str(address["address"])
        return "10.224.0.4"

    def _containers(
        self, pod: Obj, state: Obj, ready: bool, group: str = "containers", **extra: Any
    ) -> list[Obj]:
        statuses = []
        for container in pod["spec"].get(group) or []:
            entry: Obj = {
                "name": container["name"],
                "image": container.get("image", ""),
                "imageID": _image_id(container.get("image", ""))
                if "running" in state or "terminated" in state
                else "",
                "ready": ready,
                "started": "running" in state,
                "restartCount": 0,
                "state": clone(state),
                "lastState": {},
            }
            if "running" in state or "terminated" in state:
                entry["containerID"] = _container_id(pod, container["name"])
            entry.update(clone(extra))
            statuses.append(entry)
        return statuses

    def _base_conditions(
        self, pod: Obj, ready: bool, initialized: bool = True, reason: str = "", message: str = ""
    ) -> list[Obj]:
        return [
            condition("PodReadyToStartContainers", True),
            condition(
                "Initialized",
                initialized,
                "" if initialized else "ContainersNotInitialized",
                "" if initialized else message,
            ),
            condition("Ready", ready, "" if ready else reason, "" if ready else message),
            condition("ContainersReady", ready, "" if ready else reason, "" if ready else message),
            condition("PodScheduled", True),
        ]

    def _init_done(self, pod: Obj) -> None:
        done = {
            "terminated": {
                "exitCode": 0,
                "reason": "Completed",
                "startedAt": now(),
                "finishedAt": now(),
            }
        }
        if pod["spec"].get("initContainers"):
            pod["status"]["initContainerStatuses"] = self._containers(
                pod, done, True, "initContainers"
            )

    def _names(self, pod: Obj) -> str:
        return " ".join(c["name"] for c in pod["spec"]["containers"])

    def _ready(self, pod: Obj, behaviour: PodBehaviour) -> None:
        self._init_done(pod)
        pod["status"]["phase"] = "Running"
        pod["status"]["conditions"] = self._base_conditions(pod, True)
        pod["status"]["containerStatuses"] = self._containers(
            pod, {"running": {"startedAt": now()}}, True
        )

    def _pending(self, pod: Obj, behaviour: PodBehaviour) -> None:
        self._init_done(pod)
        message = f"containers with unready status: [{self._names(pod)}]"
        pod["status"]["conditions"] = self._base_conditions(
            pod, False, reason="ContainersNotReady", message=message
        )
        pod["status"]["containerStatuses"] = self._containers(
            pod, {"waiting": {"reason": "ContainerCreating"}}, False
        )

    def _image_pull_backoff(
        self, pod: Obj, behaviour: PodBehaviour, reason: str = "ImagePullBackOff"
    ) -> None:
        self._pending(pod, behaviour)
        for status, container in zip(
            pod["status"]["containerStatuses"], pod["spec"]["containers"], strict=True
        ):
            image = container.get("image", "")
            detail = behaviour.message or (
                f'failed to pull and unpack image "{image}": failed to resolve reference '
                f'"{image}": {image}: not found'
            )
            message = (
                f'Back-off pulling image "{image}": ErrImagePull: {detail}'
                if reason == "ImagePullBackOff"
                else f"rpc error: code = NotFound desc = {detail}"
            )
            status["state"] = {"waiting": {"reason": reason, "message": message}}
            where = f"spec.containers{{{container['name']}}}"
            record_event(
                self.api, pod, "Pulling", f'Pulling image "{image}"', "Normal", field_path=where
            )
            record_event(
                self.api,
                pod,
                "Failed",
                f'Failed to pull image "{image}": {detail}',
                field_path=where,
            )
            record_event(self.api, pod, "Failed", f"Error: {reason}", field_path=where)
            if reason == "ImagePullBackOff":
                record_event(
                    self.api,
                    pod,
                    "BackOff",
                    f'Back-off pulling image "{image}"',
                    "Normal",
                    field_path=where,
                )

    def _err_image_pull(self, pod: Obj, behaviour: PodBehaviour) -> None:
        self._image_pull_backoff(pod, behaviour, "ErrImagePull")

    def _crash_loop(self, pod: Obj, behaviour: PodBehaviour) -> None:
        self._init_done(pod)
        meta = pod["metadata"]
        pod["status"]["phase"] = "Running"
        message = f"containers with unready status: [{self._names(pod)}]"
        pod["status"]["conditions"] = self._base_conditions(
            pod, False, reason="ContainersNotReady", message=message
        )
        statuses = []
        for container in pod["spec"]["containers"]:
            name = container["name"]
            waiting = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": (
                        f"back-off 40s restarting failed container={name} pod={_pod_id(meta)}"
                    ),
                }
            }
            last = {
                "terminated": {
                    "exitCode": behaviour.exit_code,
                    "reason": "Error",
                    "startedAt": now(),
                    "finishedAt": now(),
                    "containerID": _container_id(pod, name),
                }
            }
            statuses.extend(
                self._containers(
                    {"spec": {"containers": [container]}, "metadata": meta},
                    waiting,
                    False,
                    restartCount=3,
                    lastState=last,
                )
            )
            record_event(
                self.api,
                pod,
                "BackOff",
                f"Back-off restarting failed container {name} in pod {_pod_id(meta)}",
                field_path=f"spec.containers{{{name}}}",
            )
        pod["status"]["containerStatuses"] = statuses

    def _unschedulable(self, pod: Obj, behaviour: PodBehaviour) -> None:
        count = max(len(self.api.store.list("nodes")), 1)
        message = behaviour.message or (
            f"0/{count} nodes are available: {count} Insufficient cpu. preemption: 0/{count} "
            f"nodes are available: {count} No preemption victims found for incoming pod."
        )
        pod["status"]["conditions"] = [condition("PodScheduled", False, "Unschedulable", message)]
        self.api.update_status(self._pods, pod)
        record_event(self.api, pod, "FailedScheduling", message, component="default-scheduler")

    def _init_failure(self, pod: Obj, behaviour: PodBehaviour) -> None:
        inits = pod["spec"].get("initContainers") or []
        if not inits:
            self._crash_loop(pod, behaviour)
            return
        meta = pod["metadata"]
        names = " ".join(c["name"] for c in inits)
        message = f"containers with incomplete status: [{names}]"
        conditions = self._base_conditions(pod, False, False, "PodInitializing", message)
        conditions[2]["reason"] = conditions[3]["reason"] = "ContainersNotReady"
        pod["status"]["conditions"] = conditions
        last = {
            "terminated": {
                "exitCode": behaviour.exit_code,
                "reason": "Error",
                "startedAt": now(),
                "finishedAt": now(),
            }
        }
        waiting = {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off 40s restarting failed container={inits[0]['name']} "
                f"pod={_pod_id(meta)}",
            }
        }
        pod["status"]["initContainerStatuses"] = self._containers(
            pod, waiting, False, "initContainers", restartCount=3, lastState=last
        )
        pod["status"]["containerStatuses"] = self._containers(
            pod, {"waiting": {"reason": "PodInitializing"}}, False
        )
        record_event(
            self.api,
            pod,
            "BackOff",
            f"Back-off restarting failed container {inits[0]['name']} in pod {_pod_id(meta)}",
            field_path=f"spec.initContainers{{{inits[0]['name']}}}",
        )

    def _terminated(self, pod: Obj, behaviour: PodBehaviour, succeeded: bool) -> None:
        self._init_done(pod)
        code = 0 if succeeded else behaviour.exit_code
        state = {
            "terminated": {
                "exitCode": code,
                "reason": "Completed" if succeeded else "Error",
                "startedAt": now(),
                "finishedAt": now(),
            }
        }
        pod["status"]["phase"] = "Succeeded" if succeeded else "Failed"
        reason = "PodCompleted" if succeeded else "PodFailed"
        pod["status"]["conditions"] = self._base_conditions(pod, False, reason=reason)
        pod["status"]["conditions"][0]["status"] = "False"
        pod["status"]["containerStatuses"] = self._containers(pod, state, False)

    def _succeeded(self, pod: Obj, behaviour: PodBehaviour) -> None:
        self._terminated(pod, behaviour, True)

    def _failed(self, pod: Obj, behaviour: PodBehaviour) -> None:
        self._terminated(pod, behaviour, False)


def is_ready(pod: Obj) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


__all__ = ["MODES", "Kubelet", "PodBehaviour", "PodRule", "is_ready"]
