"""What the API server does to a request after routing: defaulting, validation,
resourceVersion preconditions, generation, status and subresource rules, patches,
server-side apply, finalizers and garbage collection."""

from __future__ import annotations

import base64
import builtins
import ipaddress
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from . import defaults, patching, subresources
from .errors import AlreadyExists, ApiError, BadRequest, Conflict, Invalid, NotFound
from .objects import clone, comparable, now, random_suffix
from .resources import Registry, ResourceType
from .schema import Schemas
from .selectors import parse_field_selector
from .store import Obj, Store
from .validation import Validator

GENERATION_KINDS = frozenset(
    {"Deployment", "ReplicaSet", "Job", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
)
SERVER_METADATA = ("uid", "creationTimestamp", "generation", "deletionTimestamp", "resourceVersion")


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


class Api:
    """The write path every request (and every simulated controller) goes through."""

    def __init__(self, store: Store, registry: Registry, schemas: Schemas) -> None:
        self.store = store
        self.registry = registry
        self.schemas = schemas
        self.validator = Validator(schemas)
        self.merger = patching.Merger(schemas)
        self.require_namespaces = True
        self._lock = threading.RLock()
        self._depth = threading.local()
        self._settle_hooks: list[Callable[[], None]] = []
        self._cluster_ips = ipaddress.IPv4Network("10.96.0.0/16").hosts()
        next(self._cluster_ips)  # 10.96.0.1 is the kubernetes service
        self._node_ports = iter(range(30000, 32768))

    # --- the write lock, and running controllers once the outermost write is done ---

    def on_settle(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` after each outermost write, outside the lock (controllers)."""
        self._settle_hooks.append(hook)

    @contextmanager
    def writing(self) -> Iterator[None]:
        depth = getattr(self._depth, "value", 0)
        self._depth.value = depth + 1
        try:
            with self._lock:
                yield
        finally:
            self._depth.value = depth
        if depth == 0:
            for hook in self._settle_hooks:
                hook()

    # --- helpers ---------------------------------------------------------------------

    def prepare(self, resource: ResourceType, body: Any, namespace: str | None) -> Obj:
        if not isinstance(body, dict):
            raise BadRequest(f"the body of a {resource.kind} request must be a JSON object")
        obj = clone(body)
        api_version, kind = (
            obj.setdefault("apiVersion", resource.api_version),
            obj.setdefault("kind", resource.kind),
        )
        if (api_version, kind) != (resource.api_version, resource.kind):
            raise BadRequest(
                f"the API version in the data ({api_version}) and kind ({kind}) do not match "
                f"the endpoint ({resource.api_version} {resource.kind})"
            )
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise BadRequest("metadata must be an object")
        if resource.namespaced:
            body_ns = meta.get("namespace")
            if namespace and body_ns and body_ns != namespace:
                raise BadRequest(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            meta["namespace"] = namespace or body_ns or "default"
        else:
            meta.pop("namespace", None)
        return obj

    def _namespace_must_exist(self, resource: ResourceType, obj: Obj) -> None:
        ns = obj["metadata"].get("namespace")
        needs_namespace = resource.namespaced and self.require_namespaces
        if needs_namespace and self.store.find("namespaces", ns) is None:
            raise NotFound(f'namespaces "{ns}" not found', kind="namespaces", name=ns)

    def not_found(self, resource: ResourceType, name: str) -> NotFound:
        group = f".{resource.group}" if resource.group else ""
        return NotFound(
            f'{resource.plural}{group} "{name}" not found',
            kind=resource.plural,
            name=name,
            group=resource.group,
        )

    def current(self, resource: ResourceType, name: str, namespace: str | None) -> Obj:
        found = self.store.find(resource, name, namespace)
        if found is None:
            raise self.not_found(resource, name)
        return found

    def conflict(self, resource: ResourceType, name: str) -> Conflict:
        group = f".{resource.group}" if resource.group else ""
        return Conflict(
            f'Operation cannot be fulfilled on {resource.plural}{group} "{name}": the object has '
            "been modified; please apply your changes to the latest version and try again",
            kind=resource.plural,
            name=name,
            group=resource.group,
        )

    def _allocate(self, resource: ResourceType, obj: Obj, old: Obj | None) -> None:
        """Fields the server owns: Service IPs and node ports, Job selectors."""
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        old_spec = (old or {}).get("spec") or {}
        if resource.kind == "Service" and spec.get("type", "ClusterIP") != "ExternalName":
            if not spec.get("clusterIP"):
                spec["clusterIP"] = old_spec.get("clusterIP") or str(next(self._cluster_ips))
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            if spec.get("type") in ("NodePort", "LoadBalancer"):
                old_ports = {p.get("port"): p.get("nodePort") for p in old_spec.get("ports") or []}
                for port in spec.get("ports") or []:
                    if isinstance(port, dict) and not port.get("nodePort"):
                        port["nodePort"] = old_ports.get(port.get("port")) or next(self._node_ports)
        if resource.kind == "Job" and not spec.get("manualSelector"):
            if old is not None:
                spec.setdefault("selector", old_spec.get("selector"))
                template = spec.get("template")
                old_labels = ((old_spec.get("template") or {}).get("metadata") or {}).get("labels")
                if isinstance(template, dict) and old_labels:
                    labels = template.setdefault("metadata", {}).setdefault("labels", {})
                    for k, v in old_labels.items():
                        labels.setdefault(k, v)
            else:
                uid = obj["metadata"]["uid"]
                name = obj["metadata"]["name"]
                spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
                template = spec.setdefault("template", {})
                if isinstance(template, dict):
                    labels = template.setdefault("metadata", {}).setdefault("labels", {})
                    labels.update(
                        {
                            "batch.kubernetes.io/controller-uid": uid,
                            "batch.kubernetes.io/job-name": name,
                            "controller-uid": uid,
                            "job-name": name,
                        }
                    )

    # --- create ----------------------------------------------------------------------

    def create(
        self, resource: ResourceType, body: Any, namespace: str | None = None, dry_run: bool = False
    ) -> Obj:
        """POST: a new object, AlreadyExists if the name is taken."""
        with self.writing():
            obj = self.prepare(resource, body, namespace)
            meta = obj["metadata"]
            if meta.get("resourceVersion"):
                raise BadRequest("resourceVersion should not be set on objects to be created")
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = f"{meta['generateName']}{random_suffix()}"
            for field in SERVER_METADATA:
                meta.pop(field, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now()
            if resource.kind in GENERATION_KINDS:
                meta["generation"] = 1
            if resource.has_status_subresource and resource.kind != "Namespace":
                obj.pop("status", None)
                if resource.kind == "Pod":
                    obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
            self._allocate(resource, obj, None)
            defaults.apply_defaults(resource, obj)
            self.validator.check(resource, obj)
            self._namespace_must_exist(resource, obj)
            if self.store.find(resource, meta["name"], meta.get("namespace")) is not None:
                group = f".{resource.group}" if resource.group else ""
                raise AlreadyExists(
                    f'{resource.plural}{group} "{meta["name"]}" already exists',
                    kind=resource.plural,
                    name=meta["name"],
                    group=resource.group,
                )
            if dry_run:
                return obj
            return self.store.insert(resource, obj)

    # --- update, shared by PUT, every PATCH and the subresources ----------------------

    def write_update(
        self,
        resource: ResourceType,
        old: Obj,
        new: Obj,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        old_meta, meta = old["metadata"], new.setdefault("metadata", {})
        if meta.get("name", old_meta["name"]) != old_meta["name"]:
            raise BadRequest(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                f"({old_meta['name']})"
            )
        if subresource == "status":
            status = new.get("status")
            new = clone(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            meta = new["metadata"]
        elif resource.has_status_subresource:
            if "status" in old:
                new["status"] = clone(old["status"])
            else:
                new.pop("status", None)
        for field in (
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
            "name",
            "namespace",
        ):
            if field in old_meta:
                meta[field] = old_meta[field]
        if "managedFields" not in meta and "managedFields" in old_meta:
            meta["managedFields"] = old_meta["managedFields"]
        self._allocate(resource, new, old)
        defaults.apply_defaults(resource, new)
        if resource.kind in GENERATION_KINDS and _spec_part(new) != _spec_part(old):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if comparable(new) == comparable(old):
            return old
        self.validator.check(resource, new, old if subresource != "status" else None)
        if dry_run:
            return new
        if old_meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self.store.remove(resource, new)
        return self.store.update(resource, new, old)

    def replace(
        self,
        resource: ResourceType,
        name: str,
        body: Any,
        namespace: str | None = None,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """PUT: a whole new object, Conflict if its resourceVersion is not the current one."""
        with self.writing():
            old = self.current(resource, name, namespace)
            new = self.prepare(resource, body, namespace or old["metadata"].get("namespace"))
            sent_rv = new["metadata"].get("resourceVersion")
            if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise self.conflict(resource, name)
            return self.write_update(resource, old, new, subresource, dry_run)

    def update_status(self, resource: ResourceType, obj: Obj) -> Obj:
        """Write only ``obj``'s status, as a controller would; no precondition."""
        meta = obj["metadata"]
        with self.writing():
            old = self.current(resource, meta["name"], meta.get("namespace"))
            return self.write_update(resource, old, clone(obj), "status")

    def patch(
        self,
        resource: ResourceType,
        name: str,
        patch_type: str,
        body: Any,
        namespace: str | None = None,
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool = False,
        dry_run: bool = False,
    ) -> Obj:
        """PATCH in any of the four patch types; apply creates a missing object."""
        with self.writing():
            if patch_type == patching.APPLY_PATCH:
                return subresources.apply(
                    self, resource, name, body, namespace, subresource, field_manager, dry_run
                )
            old = self.current(resource, name, namespace)
            if patch_type == patching.JSON_PATCH:
                new = patching.json_patch(old, body)
            elif not isinstance(body, dict):
                raise BadRequest("a merge patch must be a JSON object")
            elif patch_type == patching.MERGE_PATCH:
                new = patching.merge_patch(old, body)
            elif patch_type == patching.STRATEGIC_MERGE_PATCH:
                new = self.merger.strategic(
                    self.schemas.root(resource.api_version, resource.kind), old, body
                )
            else:
                raise ApiError(f"the media type {patch_type!r} is not a patch type")
            if not isinstance(new, dict):
                raise Invalid("the patch did not produce an object", name=name, kind=resource.kind)
            sent_rv = (new.get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise self.conflict(resource, name)
            if subresource == "resize":
                return subresources.resize(self, resource, old, new, dry_run)
            return self.write_update(resource, old, new, subresource, dry_run)

    # --- reads with selectors and pages ---------------------------------------------

    def list(
        self,
        resource: ResourceType,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_token: str = "",
    ) -> tuple[list[Obj], int, str]:
        """Items, the list's resourceVersion, and a continue token when ``limit`` cut it."""
        fields = ("metadata.name", "metadata.namespace", *resource.extra_field_selectors)
        field_match = parse_field_selector(field_selector, fields, resource.kind)
        rv = self.store.resource_version
        items = self.store.list(resource, namespace, label_selector, field_match)
        start = 0
        if continue_token:
            try:
                start = int(json.loads(base64.urlsafe_b64decode(continue_token))["start"])
            except (ValueError, KeyError, TypeError) as exc:
                raise BadRequest("continue key is not valid") from exc
        end = start + limit if limit > 0 else len(items)
        token = ""
        if end < len(items):
            token = base64.urlsafe_b64encode(json.dumps({"start": end, "rv": rv}).encode()).decode()
        return items[start:end], rv, token

    # --- delete and garbage collection -----------------------------------------------

    def delete(
        self,
        resource: ResourceType,
        name: str,
        namespace: str | None = None,
        propagation: str | None = None,
        preconditions: dict[str, str] | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """DELETE: finalizers hold the object back; dependents go unless orphaned."""
        with self.writing():
            old = self.current(resource, name, namespace)
            meta = old["metadata"]
            for field in ("uid", "resourceVersion"):
                wanted = (preconditions or {}).get(field)
                if wanted and wanted != meta.get(field):
                    raise self.conflict(resource, name)
            if dry_run:
                return old
            if meta.get("finalizers"):
                if meta.get("deletionTimestamp"):
                    return old
                new = clone(old)
                new["metadata"]["deletionTimestamp"] = now()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                return self.store.update(resource, new, old)
            if resource.kind == "Namespace":
                for other in self.registry.types:
                    if other.namespaced and "delete" in other.verbs:
                        for obj in self.store.list(other, name):
                            self.store.remove(other, obj)
            deleted = self.store.remove(resource, old)
            if propagation is None:
                propagation = "Orphan" if resource.kind == "Job" else "Background"
            self._collect_dependents(meta["uid"], meta.get("namespace"), propagation)
            return deleted

    def _collect_dependents(self, owner_uid: str, namespace: str | None, propagation: str) -> None:
        for other in self.registry.types:
            if "delete" not in other.verbs or (other.namespaced and not namespace):
                continue
            for obj in self.store.list(other, namespace if other.namespaced else None):
                refs = obj["metadata"].get("ownerReferences") or []
                if not any(r.get("uid") == owner_uid for r in refs):
                    continue
                if propagation == "Orphan":
                    new = clone(obj)
                    new["metadata"]["ownerReferences"] = [
                        r for r in refs if r.get("uid") != owner_uid
                    ]
                    if not new["metadata"]["ownerReferences"]:
                        del new["metadata"]["ownerReferences"]
                    self.store.update(other, new, obj)
                else:
                    try:
                        self.delete(
                            other,
                            obj["metadata"]["name"],
                            obj["metadata"].get("namespace"),
                            "Background",
                        )
                    except NotFound:
                        continue

    def delete_collection(
        self,
        resource: ResourceType,
        namespace: str | None,
        label_selector: str = "",
        field_selector: str = "",
        propagation: str | None = None,
    ) -> builtins.list[Obj]:
        with self.writing():
            items, _, _ = self.list(resource, namespace, label_selector, field_selector)
            return [
                self.delete(
                    resource, obj["metadata"]["name"], obj["metadata"].get("namespace"), propagation
                )
                for obj in items
            ]
