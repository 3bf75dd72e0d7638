"""The router Deployment as the self-scaling target: sizes, replicas, room, PDB, records.

- **Size**: the wanted size step is kept in the Deployment's annotation `SIZE_ANNOTATION`
  (metadata, so writing it starts no rollout). Where the cluster supports in-place pod resize
  (Kubernetes 1.33+, the `pods/resize` subresource), every router pod is resized without a
  restart, and pods that start later at the template's size are resized when seen. A memory
  limit is never lowered in place (Kubernetes refuses that without a container restart): a
  step down lowers CPU and the memory request, which is what frees room on the node. Where it
  does not, the Deployment's pod template gets the new requests and limits, with a rolling
  update that never takes a router away before its successor is ready (maxUnavailable 0,
  maxSurge 1).
- **Replicas**: the Deployment's `scale` subresource. The PodDisruptionBudget keeps all
  routers but one available (all of them while there is only one).
- **Room**: per node, allocatable minus the requests of the pods on it.
- **Records**: the last decisions and figures, in the annotation `STATUS_ANNOTATION`, where
  `aksflight router status` reads them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from router.config import ClusterPurpose, RouterConfig
from router.errors import ResizeUnsupported, ScalerError
from router.figures import FigureSampler, RouterFigures
from router.kube import Object
from router.peers import PeerSet
from router.scaling_config import RouterSize, SelfScalingConfig, cpu_millis, memory_bytes
from router.selfscale import FleetState, ScalingDecision, SelfScaler

log = logging.getLogger(__name__)

SIZE_ANNOTATION = "aksflight.io/router-size-step"
STATUS_ANNOTATION = "aksflight.io/router-scaling"
KEPT_DECISIONS = 10
IN_PLACE_SINCE = (1, 33)


class FleetApi(Protocol):
    """The calls the target makes (router.kube.KubernetesApi implements them)."""

    def server_version(self) -> tuple[int, int]: ...

    def read_deployment(self, namespace: str, name: str) -> Object: ...

    def patch_deployment(self, namespace: str, name: str, patch: Object) -> None: ...

    def patch_scale(self, namespace: str, deployment: str, replicas: int) -> None: ...

    def list_nodes(self) -> list[Object]: ...

    def list_all_pods(self) -> list[Object]: ...

    def resize_pod(self, namespace: str, name: str, patch: Object) -> None: ...

    def read_pod_disruption_budget(self, namespace: str, name: str) -> Object | None: ...

    def write_pod_disruption_budget(self, namespace: str, body: Object, exists: bool) -> None: ...


def container_requests(pod: Object) -> tuple[int, int]:
    """(CPU millicores, memory bytes) that a pod's containers request."""
    cpu = memory = 0
    for container in (pod.get("spec") or {}).get("containers") or []:
        requests = (container.get("resources") or {}).get("requests") or {}
        cpu += cpu_millis(requests.get("cpu", "0"))
        memory += memory_bytes(requests.get("memory", "0"))
    return cpu, memory


def _running(pod: Object) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _schedulable(node: Object) -> bool:
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _show(cpu: int, memory: int) -> str:
    return f"{cpu / 1000:g} CPU, {memory / 2**30:.2f} GiB"


@dataclass
class ClusterRoom:
    """Free CPU and memory per schedulable node, and where the router pods run."""

    free: dict[str, tuple[int, int]]
    routers: list[tuple[str, int, int]]  # (node, cpu, memory) of each router pod
    in_place: bool

    @classmethod
    def measure(
        cls, nodes: list[Object], pods: list[Object], routers: list[Object], in_place: bool
    ) -> ClusterRoom:
        free: dict[str, tuple[int, int]] = {}
        for node in nodes:
            if not _schedulable(node):
                continue
            allocatable = (node.get("status") or {}).get("allocatable") or {}
            free[node["metadata"]["name"]] = (
                cpu_millis(allocatable.get("cpu", "0")),
                memory_bytes(allocatable.get("memory", "0")),
            )
        for pod in pods:
            node_name = (pod.get("spec") or {}).get("nodeName")
            if node_name in free and _running(pod):
                cpu, memory = container_requests(pod)
                free_cpu, free_memory = free[node_name]
                free[node_name] = (free_cpu - cpu, free_memory - memory)
        placed = [
            (str((p.get("spec") or {}).get("nodeName")), *container_requests(p))
            for p in routers
            if (p.get("spec") or {}).get("nodeName")
        ]
        return cls(free, placed, in_place)

    def _most_free(self) -> str:
        if not self.free:
            return "no schedulable node"
        name, (cpu, memory) = max(self.free.items(), key=lambda item: item[1])
        return f"most free: {name} with {_show(cpu, memory)}"

    def add_blocker(self, size: RouterSize) -> str | None:
        want = (size.cpu_millis, size.memory_bytes)
        if any(cpu >= want[0] and memory >= want[1] for cpu, memory in self.free.values()):
            return None
        return f"no node has {_show(*want)} free ({self._most_free()})"

    def resize_blocker(self, size: RouterSize) -> str | None:
        if not self.in_place:
            return self.add_blocker(size)  # a rolling update places one new pod at a time
        needed: dict[str, list[int]] = {}
        for node, cpu, memory in self.routers:
            extra = needed.setdefault(node, [0, 0])
            extra[0] += max(0, size.cpu_millis - cpu)
            extra[1] += max(0, size.memory_bytes - memory)
        for node, (cpu, memory) in needed.items():
            free_cpu, free_memory = self.free.get(node, (0, 0))
            if cpu > free_cpu or memory > free_memory:
                return (
                    f"node {node} cannot grow its routers in place by {_show(cpu, memory)} "
                    f"(free: {_show(free_cpu, free_memory)})"
                )
        return None


def resources_of(size: RouterSize) -> dict[str, dict[str, str]]:
    """Requests equal to limits: the router's CPU share is what it was sized for."""
    amounts = {"cpu": size.cpu, "memory": size.memory}
    return {"requests": dict(amounts), "limits": dict(amounts)}


class KubernetesRouterTarget:
    """Applies self-scaling decisions to the router Deployment; blocking calls in threads."""

    def __init__(self, api: FleetApi, config: SelfScalingConfig, namespace: str) -> None:
        self._api = api
        self._config = config
        self._namespace = namespace
        self._in_place: bool | None = {"in-place": True, "rolling": False}.get(config.resize)
        self._pdb_checked = False

    @property
    def deployment(self) -> str:
        return self._config.deployment

    async def _call(self, function: Any, *args: Any) -> Any:
        return await asyncio.to_thread(function, *args)

    async def _supports_in_place(self) -> bool:
        if self._in_place is None:
            try:
                version = await self._call(self._api.server_version)
            except ScalerError as exc:
                log.warning("router self-scaling: %s; resizing by rolling update", exc)
                version = (0, 0)
            self._in_place = version >= IN_PLACE_SINCE
            log.info(
                "router self-scaling: Kubernetes %d.%d, %s",
                *version,
                "in-place pod resize" if self._in_place else "resize by rolling update",
            )
        return self._in_place

    def _step_of(self, deployment: Object) -> int:
        annotations = (deployment.get("metadata") or {}).get("annotations") or {}
        sizes = self._config.sizes
        text = annotations.get(SIZE_ANNOTATION)
        if text is not None and text.isdigit() and int(text) < len(sizes):
            return int(text)
        template = {"spec": ((deployment.get("spec") or {}).get("template") or {}).get("spec")}
        cpu, _ = container_requests(template)
        fitting = [i for i, size in enumerate(sizes) if size.cpu_millis <= cpu]
        return fitting[-1] if fitting else 0

    def _router_pods(self, deployment: Object, pods: list[Object]) -> list[Object]:
        selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        return [
            pod
            for pod in pods
            if (pod.get("metadata") or {}).get("namespace") == self._namespace
            and _running(pod)
            and not (pod.get("metadata") or {}).get("deletionTimestamp")
            and all(
                ((pod.get("metadata") or {}).get("labels") or {}).get(k) == v
                for k, v in selector.items()
            )
        ]

    async def _read(self) -> tuple[Object, list[Object], list[Object]]:
        deployment = await self._call(self._api.read_deployment, self._namespace, self.deployment)
        nodes = await self._call(self._api.list_nodes)
        pods = await self._call(self._api.list_all_pods)
        return deployment, nodes, pods

    async def state(self) -> tuple[FleetState, ClusterRoom]:
        deployment, nodes, pods = await self._read()
        if not self._pdb_checked:
            await self.ensure_disruption_budget(deployment)
        replicas = int((deployment.get("spec") or {}).get("replicas") or 0)
        in_place = await self._supports_in_place()
        routers = self._router_pods(deployment, pods)
        room = ClusterRoom.measure(nodes, pods, routers, in_place)
        return FleetState(self._step_of(deployment), replicas), room

    async def resize(self, step: int) -> str:
        size = self._config.sizes[step]
        if await self._supports_in_place():
            await self._patch({"metadata": {"annotations": {SIZE_ANNOTATION: str(step)}}})
            try:
                await self.reconcile(step)
                return "in-place"
            except ResizeUnsupported as exc:
                log.warning("router self-scaling: %s; resizing by rolling update", exc)
                self._in_place = False
        await self._patch(self._rolling(step, size))
        return "rolling"

    async def _patch(self, patch: Object) -> None:
        await self._call(self._api.patch_deployment, self._namespace, self.deployment, patch)

    def _rolling(self, step: int, size: RouterSize) -> Object:
        return {
            "metadata": {"annotations": {SIZE_ANNOTATION: str(step)}},
            "spec": {
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
                },
                "template": {
                    "spec": {
                        "containers": [
                            {"name": self._config.container, "resources": resources_of(size)}
                        ]
                    }
                },
            },
        }

    async def reconcile(self, step: int) -> None:
        """Resize, in place, router pods whose size is not the wanted one."""
        if not await self._supports_in_place():
            return
        size = self._config.sizes[step]
        want = (size.cpu_millis, size.memory_bytes)
        deployment, _, pods = await self._read()
        for pod in self._router_pods(deployment, pods):
            if container_requests(pod) != want:
                name = pod["metadata"]["name"]
                resources = resources_of(size)
                kept = self._memory_limit(pod)
                if kept is not None and memory_bytes(kept) > size.memory_bytes:
                    resources["limits"]["memory"] = kept  # not lowered in place (see above)
                patch = {
                    "spec": {
                        "containers": [{"name": self._config.container, "resources": resources}]
                    }
                }
                await self._call(self._api.resize_pod, self._namespace, name, patch)
                log.info("router self-scaling: resized %s in place to %s", name, _show(*want))

    def _memory_limit(self, pod: Object) -> str | None:
        for container in (pod.get("spec") or {}).get("containers") or []:
            if container.get("name") == self._config.container:
                limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
                return str(limit) if limit is not None else None
        return None

    async def scale(self, replicas: int) -> None:
        await self._call(self._api.patch_scale, self._namespace, self.deployment, replicas)
        deployment = await self._call(self._api.read_deployment, self._namespace, self.deployment)
        await self.ensure_disruption_budget(deployment)

    async def ensure_disruption_budget(self, deployment: Object) -> None:
        """All routers but one stay available through voluntary disruptions (all, if one)."""
        spec = deployment.get("spec") or {}
        labels = (spec.get("selector") or {}).get("matchLabels") or {}
        replicas = int(spec.get("replicas") or 0)
        budget: Object = {"selector": {"matchLabels": labels}}
        budget.update({"maxUnavailable": 1} if replicas > 1 else {"minAvailable": 1})
        body = {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": self.deployment, "namespace": self._namespace},
            "spec": budget,
        }
        current = await self._call(
            self._api.read_pod_disruption_budget, self._namespace, self.deployment
        )
        if (
            current is None
            or {
                k: v for k, v in (current.get("spec") or {}).items() if k in budget or k in PDB_KEYS
            }
            != budget
        ):
            if current is not None:
                body["spec"] = {**budget, **{k: None for k in PDB_KEYS if k not in budget}}
            await self._call(
                self._api.write_pod_disruption_budget, self._namespace, body, current is not None
            )
        self._pdb_checked = True

    async def record(self, decisions: list[ScalingDecision], figures: dict[str, object]) -> None:
        status = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "decisions": [d.to_json() for d in decisions[-KEPT_DECISIONS:]],
            "figures": figures,
        }
        await self._patch({"metadata": {"annotations": {STATUS_ANNOTATION: json.dumps(status)}}})


PDB_KEYS = ("minAvailable", "maxUnavailable")


def build_self_scaler(
    config: RouterConfig, api: object, peers: PeerSet, figures: FigureSampler
) -> SelfScaler | None:
    """The controller for a router in a cluster; None where it must not run (and why, logged)."""
    settings = config.self_scaling
    if not settings.enabled or settings.target == "none":
        return None
    if config.cluster_purpose is ClusterPurpose.DEV_TEST:
        log.info("router self-scaling disabled: DevTest cluster")
        return None
    assert api is not None, "the router's self-scaling needs a cluster API"
    namespace = settings.namespace or config.peers.namespace
    target = KubernetesRouterTarget(cast(FleetApi, api), settings, namespace)
    own_name = config.own_name

    async def gather() -> dict[str, RouterFigures]:
        return {**peers.figures(), own_name: figures.snapshot()}

    return SelfScaler(settings, target, gather, active=peers.is_coordinator)
