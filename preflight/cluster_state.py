"""Read-only collection of the cluster's state for the cluster-state rules
(`rules.cluster`): nodes with what is allocatable and already requested, HPAs, and
SelfSubjectAccessReviews for what the router and the deployer need.

It only reads (list, get) and creates SelfSubjectAccessReviews, which change nothing, so
it can run with the same credentials a person checks with. It uses the official client
synchronously: one short pass over a few lists, not a probe that races others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.utils.quantity import parse_quantity
from urllib3.exceptions import HTTPError

from preflight.errors import PreflightError
from rules.cluster import (
    DEPLOYER_PERMISSIONS,
    ROUTER_PERMISSIONS,
    ClusterSnapshot,
    HpaInfo,
    NodeInfo,
    ServicePlan,
)

POOL_LABELS = ("kubernetes.azure.com/agentpool", "agentpool")
REGION_LABEL = "topology.kubernetes.io/region"
_GIB = Decimal(1024**3)
# The API group of each resource a permission in rules.cluster names.
_GROUPS = {"deployments": "apps", "endpointslices": "discovery.k8s.io"}
_FINISHED = ("Succeeded", "Failed")

T = TypeVar("T")


class ClusterStateError(PreflightError):
    """The cluster's state could not be read (the API refused or did not answer)."""


def node_pool(labels: Mapping[str, str] | None) -> str:
    """The AKS node pool a node belongs to, from its labels ("" when it names none)."""
    labels = labels or {}
    return next((labels[k] for k in POOL_LABELS if labels.get(k)), "")


def _quantity(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    try:
        return Decimal(parse_quantity(value))  # type: ignore[no-untyped-call]
    except (ValueError, ArithmeticError):
        return Decimal(0)  # a quantity the API accepted but we cannot read adds nothing


def _requests(containers: Iterable[Any] | None) -> tuple[Decimal, Decimal]:
    cpu = memory = Decimal(0)
    for container in containers or ():
        requests = (container.resources.requests if container.resources else None) or {}
        cpu += _quantity(requests.get("cpu"))
        memory += _quantity(requests.get("memory"))
    return cpu, memory


def pod_requests(pod: Any) -> tuple[Decimal, Decimal]:
    """CPU cores and memory bytes the scheduler reserves for a pod: its containers' requests,
    or the largest init container's when that is more, plus the pod overhead."""
    spec = pod.spec
    cpu, memory = _requests(spec.containers)
    for init in spec.init_containers or ():
        init_cpu, init_memory = _requests([init])
        cpu, memory = max(cpu, init_cpu), max(memory, init_memory)
    overhead = spec.overhead or {}
    return cpu + _quantity(overhead.get("cpu")), memory + _quantity(overhead.get("memory"))


def _nodes(core: Any, pods: list[Any]) -> tuple[NodeInfo, ...]:
    used: dict[str, tuple[Decimal, Decimal]] = {}
    for pod in pods:
        node = pod.spec.node_name if pod.spec else None
        if not node or (pod.status and pod.status.phase in _FINISHED):
            continue
        cpu, memory = pod_requests(pod)
        before = used.get(node, (Decimal(0), Decimal(0)))
        used[node] = (before[0] + cpu, before[1] + memory)
    out = []
    for node in core.list_node().items:
        labels = node.metadata.labels or {}
        allocatable = (node.status.allocatable if node.status else None) or {}
        cpu_used, memory_used = used.get(node.metadata.name, (Decimal(0), Decimal(0)))
        out.append(
            NodeInfo(
                name=node.metadata.name,
                pool=node_pool(labels),
                cpu_allocatable=float(_quantity(allocatable.get("cpu"))),
                memory_allocatable_gb=float(_quantity(allocatable.get("memory")) / _GIB),
                cpu_requested=float(cpu_used),
                memory_requested_gb=float(memory_used / _GIB),
                region=labels.get(REGION_LABEL),
                pod_cidr=node.spec.pod_cidr if node.spec else None,
            )
        )
    return tuple(sorted(out, key=lambda n: n.name))


def _hpas(api: Any) -> tuple[HpaInfo, ...]:
    autoscaling: Any = k8s.AutoscalingV2Api(api)
    items = autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces().items
    return tuple(
        HpaInfo(
            namespace=hpa.metadata.namespace,
            name=hpa.metadata.name,
            target_kind=hpa.spec.scale_target_ref.kind,
            target_name=hpa.spec.scale_target_ref.name,
        )
        for hpa in items
    )


# The labels the deployer puts on every model service's Deployment.
MODEL_SELECTOR = "app.kubernetes.io/component=model,app.kubernetes.io/managed-by=aksflight"


def _deployed_models(api: Any) -> tuple[ServicePlan, ...]:
    """The model services already running, with their replicas and per-replica requests."""
    apps: Any = k8s.AppsV1Api(api)
    items = apps.list_deployment_for_all_namespaces(label_selector=MODEL_SELECTOR).items
    out = []
    for deployment in items:
        cpu, memory = _requests(deployment.spec.template.spec.containers)
        out.append(
            ServicePlan(
                name=deployment.metadata.name,
                namespace=deployment.metadata.namespace,
                replicas=deployment.spec.replicas or 0,
                cpu_cores=float(cpu),
                memory_gb=float(memory / _GIB),
            )
        )
    return tuple(sorted(out, key=lambda s: (s.namespace, s.name)))


def may(api: Any, permission: str, namespace: str) -> bool:
    """Whether the caller may do `permission` ("verb resource") in `namespace`."""
    verb, resource = permission.split(" ", 1)
    review = k8s.V1SelfSubjectAccessReview(
        spec=k8s.V1SelfSubjectAccessReviewSpec(
            resource_attributes=k8s.V1ResourceAttributes(
                namespace=namespace, verb=verb, resource=resource, group=_GROUPS.get(resource, "")
            )
        )
    )
    authorization: Any = k8s.AuthorizationV1Api(api)
    answer = authorization.create_self_subject_access_review(body=review)
    return bool(answer.status and answer.status.allowed)


def _unless_forbidden(what: str, fetch: Callable[[], tuple[T, ...]]) -> tuple[T, ...]:
    """`fetch()`, or nothing when the credentials may not list `what` (403): those rules then
    have nothing to judge. Any other failure is a ClusterStateError naming `what`."""
    try:
        return fetch()
    except ApiException as exc:
        if exc.status != 403:
            raise ClusterStateError(f"cannot list {what}: {_why(exc)}") from exc
        return ()
    except (HTTPError, OSError) as exc:
        raise ClusterStateError(f"cannot list {what}: {_why(exc)}") from exc


def collect_snapshot(
    api: Any,
    *,
    router_namespace: str,
    deploy_namespace: str | None = None,
    permissions: bool = True,
) -> ClusterSnapshot:
    """A `ClusterSnapshot` read through `api` (a `kubernetes.client.ApiClient`).

    Raises `ClusterStateError` naming what could not be read; a 403 on the HPA list is
    not an error (the snapshot then has no HPAs to judge).
    """
    core: Any = k8s.CoreV1Api(api)
    try:
        pods = core.list_pod_for_all_namespaces().items
        nodes = _nodes(core, pods)
    except (ApiException, HTTPError, OSError) as exc:
        raise ClusterStateError(f"cannot list nodes and pods: {_why(exc)}") from exc
    hpas = _unless_forbidden("HorizontalPodAutoscalers", lambda: _hpas(api))
    deployed = _unless_forbidden("model Deployments", lambda: _deployed_models(api))
    allowed: dict[str, bool] = {}
    if permissions:
        wanted = [(p, router_namespace) for p in ROUTER_PERMISSIONS] + [
            (p, deploy_namespace or router_namespace) for p in DEPLOYER_PERMISSIONS
        ]
        try:
            allowed = {p: may(api, p, ns) for p, ns in wanted}
        except (ApiException, HTTPError, OSError) as exc:
            raise ClusterStateError(f"cannot review permissions: {_why(exc)}") from exc
    return ClusterSnapshot(nodes=nodes, hpas=hpas, permissions=allowed, deployed_models=deployed)


def _why(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason or ''}".strip()
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
