"""Cluster-state rules: what the cluster's own objects say about a planned deployment.

Input is a `ClusterSnapshot` — plain data a collector read through the Kubernetes API
(read-only) — and the services planned for it. Output is `Finding`s on synthetic
`cluster:` checks, each naming the object that triggered it, so reports show them beside
the network checks:

- `cluster:hpa:<ns>/<name>`            an HPA targets a model deployment (fights the router)
- `cluster:capacity`                   free CPU/memory cannot hold the planned replicas
- `cluster:fit:<service>`              no node can hold even one replica of a service
- `cluster:devtest`                    a DevTest cluster: the router does not scale itself
- `cluster:network-plugin`             the config's network plugin is not the cluster's
- `cluster:region`                     the workspace is in another region than the cluster
- `cluster:model-limit:<service>`      more than 1,000 models in one deployment
- `cluster:rbac:<verb resource>`       a permission the router or the deployer needs is denied
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rules.config import EnvironmentConfig
from rules.model import Check, CheckKind, Finding, Phase, Status

MAX_MODELS_PER_DEPLOYMENT = 1000
ROUTER_PERMISSIONS = ("list pods", "watch pods", "list services", "list endpoints")
DEPLOYER_PERMISSIONS = (
    "create deployments",
    "patch deployments",
    "create services",
    "create secrets",
)


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    pool: str
    cpu_allocatable: float  # cores
    memory_allocatable_gb: float
    cpu_requested: float = 0.0
    memory_requested_gb: float = 0.0
    region: str | None = None  # topology.kubernetes.io/region
    pod_cidr: str | None = None  # spec.podCIDR: set on kubenet (and CNI overlay) nodes

    @property
    def cpu_free(self) -> float:
        return max(self.cpu_allocatable - self.cpu_requested, 0.0)

    @property
    def memory_free_gb(self) -> float:
        return max(self.memory_allocatable_gb - self.memory_requested_gb, 0.0)


@dataclass(frozen=True, slots=True)
class HpaInfo:
    namespace: str
    name: str
    target_kind: str
    target_name: str


@dataclass(frozen=True, slots=True)
class ServicePlan:
    """A model service to be deployed: its replicas and per-replica requests."""

    name: str
    namespace: str
    replicas: int
    cpu_cores: float
    memory_gb: float
    models: int = 1

    @property
    def deployment_name(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    nodes: tuple[NodeInfo, ...]
    hpas: tuple[HpaInfo, ...] = ()
    # "verb resource" → allowed, from SelfSubjectAccessReviews
    permissions: Mapping[str, bool] = field(default_factory=dict)
    # Model services already deployed (the deployer's labelled Deployments): an HPA on
    # one of them is a conflict even when no new service is planned.
    deployed_models: tuple[ServicePlan, ...] = ()


def _check(check_id: str, phase: Phase, target: str, purpose: str) -> Check:
    return Check(
        id=check_id,
        kind=CheckKind.CLUSTER,
        phase=phase,
        target=target,
        phases=(phase,),
        purpose=purpose,
        source="cluster state",
    )


def _finding(check: Check, status: Status, reason: str, remediation: str = "") -> Finding:
    return Finding(check=check, status=status, reason=reason, remediation=remediation)


def hpa_findings(snapshot: ClusterSnapshot, services: Sequence[ServicePlan]) -> list[Finding]:
    targets = {(s.namespace, s.deployment_name) for s in (*services, *snapshot.deployed_models)}
    out = []
    for hpa in snapshot.hpas:
        if hpa.target_kind == "Deployment" and (hpa.namespace, hpa.target_name) in targets:
            ref = f"{hpa.namespace}/{hpa.name}"
            out.append(
                _finding(
                    _check(
                        f"cluster:hpa:{ref}",
                        Phase.SERVING,
                        ref,
                        "no Kubernetes HPA on model deployments",
                    ),
                    Status.FAIL,
                    f"HorizontalPodAutoscaler {ref} targets model deployment {hpa.target_name}: "
                    "it fights the router's autoscaler",
                    f"delete the HPA (kubectl delete hpa -n {hpa.namespace} {hpa.name}) "
                    "and use the service's autoscale_* settings",
                )
            )
    return out


def capacity_findings(
    snapshot: ClusterSnapshot, services: Sequence[ServicePlan], purpose: str
) -> list[Finding]:
    out = []
    need_cpu = sum(s.replicas * s.cpu_cores for s in services)
    need_mem = sum(s.replicas * s.memory_gb for s in services)
    free_cpu = sum(n.cpu_free for n in snapshot.nodes)
    free_mem = sum(n.memory_free_gb for n in snapshot.nodes)
    check = _check(
        "cluster:capacity",
        Phase.MODEL_DEPLOY,
        "nodes",
        "free CPU and memory hold the planned replicas",
    )
    short = []
    if need_cpu > free_cpu + 1e-9:
        short.append(f"CPU {need_cpu:g} cores needed, {free_cpu:g} free")
    if need_mem > free_mem + 1e-9:
        short.append(f"memory {need_mem:g} GB needed, {free_mem:g} GB free")
    if short:
        out.append(
            _finding(
                check,
                Status.FAIL,
                "; ".join(short),
                "the replicas beyond the free capacity stay Pending (Unschedulable): "
                "add nodes, or lower replicas or cpu_cores/memory_gb",
            )
        )
    else:
        out.append(
            _finding(
                check,
                Status.PASS,
                f"{need_cpu:g} of {free_cpu:g} free cores, {need_mem:g} of {free_mem:g} free GB",
            )
        )
    for service in services:
        fits = any(
            n.cpu_free >= service.cpu_cores and n.memory_free_gb >= service.memory_gb
            for n in snapshot.nodes
        )
        if not fits:
            out.append(
                _finding(
                    _check(
                        f"cluster:fit:{service.name}",
                        Phase.MODEL_DEPLOY,
                        service.name,
                        "one replica fits on some node",
                    ),
                    Status.FAIL,
                    f"no node has {service.cpu_cores:g} cores and {service.memory_gb:g} GB "
                    f"free for one replica of {service.name}",
                    "use larger nodes or smaller requests",
                )
            )
    if purpose == "DevTest":
        out.append(
            _finding(
                _check(
                    "cluster:devtest",
                    Phase.ROUTER_RUNNING,
                    "cluster",
                    "the router scales itself on production clusters",
                ),
                Status.WARN,
                "a DevTest cluster: the router does not scale itself, and one node pool has "
                "little room",
                "create or attach the cluster with purpose FastProd or DenseProd for production",
            )
        )
    return out


def network_plugin_finding(snapshot: ClusterSnapshot, config: EnvironmentConfig) -> list[Finding]:
    if not snapshot.nodes:
        return []
    with_cidr = [n.name for n in snapshot.nodes if n.pod_cidr]
    observed = "kubenet" if len(with_cidr) == len(snapshot.nodes) else "azure"
    check = _check(
        "cluster:network-plugin",
        Phase.ROUTER_INSTALL,
        "nodes",
        "the config's network plugin is the cluster's",
    )
    evidence = f"{len(with_cidr)} of {len(snapshot.nodes)} nodes have spec.podCIDR"
    if observed == config.cluster.network_plugin:
        return [_finding(check, Status.PASS, f"{observed} ({evidence})")]
    return [
        _finding(
            check,
            Status.WARN,
            f"the config says {config.cluster.network_plugin}, the nodes look like "
            f"{observed} ({evidence}; Azure CNI overlay also sets podCIDR)",
            "set cluster.network_plugin to what the cluster runs, so the right checks run",
        )
    ]


def region_finding(snapshot: ClusterSnapshot, config: EnvironmentConfig) -> list[Finding]:
    regions = sorted({n.region for n in snapshot.nodes if n.region})
    check = _check(
        "cluster:region",
        Phase.ROUTER_RUNNING,
        "workspace",
        "the workspace is in the cluster's region",
    )
    out = []
    if regions and config.region not in regions:
        out.append(
            _finding(
                check,
                Status.WARN,
                f"the config says {config.region}, the nodes are in {', '.join(regions)}",
                "fix region in the config",
            )
        )
    cluster_region = regions[0] if len(regions) == 1 else config.region
    if config.workspace_region != cluster_region:
        out.append(
            _finding(
                check,
                Status.WARN,
                f"workspace in {config.workspace_region}, cluster in {cluster_region}: "
                "token fetches cross regions",
                "keep the workspace in the cluster's region",
            )
        )
    if not out:
        out.append(_finding(check, Status.PASS, f"both in {cluster_region}"))
    return out


def model_limit_findings(services: Sequence[ServicePlan]) -> list[Finding]:
    out = []
    for service in services:
        if service.models > MAX_MODELS_PER_DEPLOYMENT:
            out.append(
                _finding(
                    _check(
                        f"cluster:model-limit:{service.name}",
                        Phase.MODEL_DEPLOY,
                        service.name,
                        "at most 1,000 models per deployment",
                    ),
                    Status.FAIL,
                    f"{service.models} models in {service.name}; "
                    f"at most {MAX_MODELS_PER_DEPLOYMENT}",
                    "split the models over several services",
                )
            )
    return out


def rbac_findings(snapshot: ClusterSnapshot) -> list[Finding]:
    out = []
    for permission in (*ROUTER_PERMISSIONS, *DEPLOYER_PERMISSIONS):
        allowed = snapshot.permissions.get(permission)
        if allowed is None:
            continue
        phase = Phase.ROUTER_STARTUP if permission in ROUTER_PERMISSIONS else Phase.MODEL_DEPLOY
        check = _check(
            f"cluster:rbac:{permission.replace(' ', '-')}", phase, permission, f"may {permission}"
        )
        if allowed:
            out.append(_finding(check, Status.PASS, f"allowed to {permission}"))
        else:
            out.append(
                _finding(
                    check,
                    Status.FAIL,
                    f"not allowed to {permission}",
                    f"grant {permission} with a Role and RoleBinding",
                )
            )
    return out


def cluster_findings(
    snapshot: ClusterSnapshot, config: EnvironmentConfig, services: Sequence[ServicePlan] = ()
) -> list[Finding]:
    """Every cluster-state finding, in a fixed order."""
    return [
        *network_plugin_finding(snapshot, config),
        *rbac_findings(snapshot),
        *region_finding(snapshot, config),
        *capacity_findings(snapshot, services, config.cluster.purpose),
        *model_limit_findings(services),
        *hpa_findings(snapshot, services),
    ]
