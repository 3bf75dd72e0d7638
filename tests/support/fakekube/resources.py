"""The kinds the fake serves, and the discovery documents the official client reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import NotFound

STANDARD_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
KUBERNETES_VERSION = "1.33"


@dataclass(frozen=True)
class ResourceType:
    """One REST resource: where it lives in the URL space and how it behaves."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    subresources: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = tuple(STANDARD_VERBS)
    # "name" rule: subdomain (default), label, dns1035 or path (RBAC objects)
    name_rule: str = "subdomain"
    # DELETE answers with the object itself rather than a Status
    delete_returns_object: bool = False
    extra_field_selectors: tuple[str, ...] = field(default=())

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource_id(self) -> str:
        """A stable key for the store: ``apps/deployments``, ``pods``."""
        return f"{self.group}/{self.plural}" if self.group else self.plural

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def has_status_subresource(self) -> bool:
        return "status" in self.subresources

    def qualified_kind(self) -> str:
        """``Deployment.apps`` style, as the API server writes it in messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


_CORE = ""
RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType(
        _CORE,
        "v1",
        "namespaces",
        "Namespace",
        namespaced=False,
        subresources=("status",),
        short_names=("ns",),
        name_rule="label",
        delete_returns_object=True,
        extra_field_selectors=("status.phase",),
    ),
    ResourceType(
        _CORE,
        "v1",
        "pods",
        "Pod",
        subresources=("status", "log", "resize"),
        short_names=("po",),
        delete_returns_object=True,
        extra_field_selectors=(
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ),
    ),
    ResourceType(
        _CORE,
        "v1",
        "services",
        "Service",
        subresources=("status",),
        short_names=("svc",),
        name_rule="dns1035",
        delete_returns_object=True,
    ),
    ResourceType(_CORE, "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    ResourceType(_CORE, "v1", "secrets", "Secret", extra_field_selectors=("type",)),
    ResourceType(_CORE, "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    ResourceType(
        _CORE,
        "v1",
        "events",
        "Event",
        short_names=("ev",),
        extra_field_selectors=(
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ),
    ),
    ResourceType(
        _CORE,
        "v1",
        "nodes",
        "Node",
        namespaced=False,
        subresources=("status",),
        short_names=("no",),
        extra_field_selectors=("spec.unschedulable",),
    ),
    ResourceType(_CORE, "v1", "endpoints", "Endpoints", short_names=("ep",)),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        subresources=("status", "scale"),
        short_names=("deploy",),
    ),
    ResourceType(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        subresources=("status", "scale"),
        short_names=("rs",),
        extra_field_selectors=("status.replicas",),
    ),
    ResourceType(
        "batch",
        "v1",
        "jobs",
        "Job",
        subresources=("status",),
        extra_field_selectors=("status.successful",),
    ),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", name_rule="path"),
    ResourceType(
        "rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", name_rule="path"
    ),
    ResourceType(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        namespaced=False,
        name_rule="path",
    ),
    ResourceType(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        namespaced=False,
        name_rule="path",
    ),
    ResourceType(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        subresources=("status",),
        short_names=("hpa",),
    ),
    ResourceType(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        subresources=("status",),
        short_names=("pdb",),
    ),
    ResourceType("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease"),
    ResourceType(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        namespaced=False,
        verbs=("create",),
    ),
)


class Registry:
    """Looks resource types up by URL parts, by kind, or by any of their names."""

    def __init__(self, types: tuple[ResourceType, ...] = RESOURCE_TYPES) -> None:
        self.types = types
        self._by_url = {(t.group, t.version, t.plural): t for t in types}
        self._by_kind = {(t.api_version, t.kind): t for t in types}
        self._by_name: dict[str, ResourceType] = {}
        for t in types:
            for alias in (t.kind, t.kind.lower(), t.plural, t.resource_id, *t.short_names):
                self._by_name.setdefault(alias, t)

    def by_url(self, group: str, version: str, plural: str) -> ResourceType:
        try:
            return self._by_url[(group, version, plural)]
        except KeyError:
            raise NotFound("the server could not find the requested resource") from None

    def by_kind(self, api_version: str, kind: str) -> ResourceType:
        try:
            return self._by_kind[(api_version, kind)]
        except KeyError:
            raise NotFound(f"no kind {kind!r} is registered for version {api_version!r}") from None

    def resolve(self, name: str) -> ResourceType:
        """A type from a kind, plural, short name or ``group/plural``, for test code."""
        try:
            return self._by_name[name]
        except KeyError:
            raise NotFound(f"unknown resource type {name!r}") from None

    def group_versions(self) -> dict[str, list[str]]:
        versions: dict[str, list[str]] = {}
        for t in self.types:
            listed = versions.setdefault(t.group, [])
            if t.version not in listed:
                listed.append(t.version)
        return versions

    # --- discovery documents -------------------------------------------------------

    def core_versions(self, server_address: str) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
            ],
        }

    def api_group(self, group: str) -> dict[str, Any]:
        versions = self.group_versions().get(group)
        if not versions or not group:
            raise NotFound("the server could not find the requested resource")
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": entries,
            "preferredVersion": entries[0],
        }

    def api_group_list(self) -> dict[str, Any]:
        groups = [self.api_group(g) for g in self.group_versions() if g]
        for g in groups:
            del g["kind"], g["apiVersion"]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def resource_list(self, group: str, version: str) -> dict[str, Any]:
        chosen = [t for t in self.types if t.group == group and t.version == version]
        if not chosen:
            raise NotFound("the server could not find the requested resource")
        resources: list[dict[str, Any]] = []
        for t in chosen:
            entry: dict[str, Any] = {
                "name": t.plural,
                "singularName": t.singular,
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": list(t.verbs),
            }
            if t.short_names:
                entry["shortNames"] = list(t.short_names)
            resources.append(entry)
            for sub in t.subresources:
                sub_kind = "Scale" if sub == "scale" else t.kind
                sub_verbs = ["get"] if sub == "log" else ["get", "patch", "update"]
                resources.append(
                    {
                        "name": f"{t.plural}/{sub}",
                        "singularName": "",
                        "namespaced": t.namespaced,
                        "kind": sub_kind,
                        "verbs": sub_verbs,
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }


def version_info() -> dict[str, str]:
    major, minor = KUBERNETES_VERSION.split(".")
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{KUBERNETES_VERSION}.0",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }
