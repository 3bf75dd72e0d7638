"""Subresources and patch kinds with rules of their own: server-side apply (field
managers, pruning what a manager stopped applying), pods/resize and the scale
subresource."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import patching
from .errors import BadRequest, Invalid
from .objects import clone, comparable, now
from .resources import ResourceType
from .selectors import selector_string
from .store import Obj

if TYPE_CHECKING:
    from .api import Api


def apply(
    api: Api,
    resource: ResourceType,
    name: str,
    body: Any,
    namespace: str | None,
    subresource: str | None,
    field_manager: str | None,
    dry_run: bool,
) -> Obj:
    if not field_manager:
        raise BadRequest("PATCH requests with apply content type must have a fieldManager")
    if not isinstance(body, dict) or "apiVersion" not in body or "kind" not in body:
        raise BadRequest("an applied configuration must name its apiVersion and kind")
    applied = api.prepare(resource, body, namespace)
    if applied["metadata"].get("name") != name:
        raise BadRequest(f"the name in the applied configuration must be {name!r}")
    root = api.schemas.root(resource.api_version, resource.kind)
    fields = api.merger.fieldset(root, {k: v for k, v in applied.items() if k != "metadata"})
    meta_fields = api.merger.fieldset(api.schemas.child(root, "metadata"), applied["metadata"])
    fields["f:metadata"] = meta_fields
    entry = {
        "manager": field_manager,
        "operation": "Apply",
        "apiVersion": resource.api_version,
        "time": now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }
    if subresource:
        entry["subresource"] = subresource
    old = api.store.find(
        resource, name, applied["metadata"]["namespace"] if resource.namespaced else None
    )
    if old is None:
        if subresource:
            raise api.not_found(resource, name)
        applied["metadata"]["managedFields"] = [entry]
        return api.create(resource, applied, namespace, dry_run)
    entries = clone(old["metadata"].get("managedFields") or [])
    mine = [
        e for e in entries if e.get("manager") == field_manager and e.get("operation") == "Apply"
    ]
    others: Obj = {}
    for e in entries:
        if e not in mine and e.get("operation") == "Apply":
            others = patching.union(others, e.get("fieldsV1") or {})
    new = api.merger.apply(root, old, applied)
    if mine:
        patching.prune(new, mine[0].get("fieldsV1") or {}, fields, others)
    entries = [entry if e in mine else e for e in entries] if mine else [*entries, entry]
    new["metadata"]["managedFields"] = entries
    new["metadata"].pop("resourceVersion", None)
    return api.write_update(resource, old, new, subresource, dry_run)


def resize(api: Api, resource: ResourceType, old: Obj, new: Obj, dry_run: bool) -> Obj:
    """pods/resize: only container resources may change; the kubelet takes them at once."""

    def without_resources(pod: Obj) -> Any:
        spec = clone(pod.get("spec") or {})
        for container in spec.get("containers") or []:
            container.pop("resources", None)
        return spec

    if without_resources(new) != without_resources(old):
        raise Invalid(
            f'Pod "{old["metadata"]["name"]}" is invalid: spec: Forbidden: only cpu and memory '
            "resources are mutable",
            kind="Pod",
            name=old["metadata"]["name"],
        )
    result = clone(old)
    result["spec"]["containers"] = new["spec"]["containers"]
    resources = {c["name"]: c.get("resources", {}) for c in new["spec"]["containers"]}
    for status in (result.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") in resources:
            status["resources"] = resources[status["name"]]
    result["metadata"].pop("resourceVersion", None)
    if comparable(result) == comparable(old):
        return old
    api.validator.check(resource, result)
    return result if dry_run else api.store.update(resource, result, old)


def get_scale(api: Api, resource: ResourceType, name: str, namespace: str | None) -> Obj:
    obj = api.current(resource, name, namespace)
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
        },
        "spec": {"replicas": obj["spec"].get("replicas", 1)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": selector_string(obj["spec"].get("selector") or {}),
        },
    }


def update_scale(
    api: Api,
    resource: ResourceType,
    name: str,
    scale: Any,
    namespace: str | None,
    dry_run: bool = False,
) -> Obj:
    with api.writing():
        old = api.current(resource, name, namespace)
        if not isinstance(scale, dict):
            raise BadRequest("a Scale must be a JSON object")
        scale.setdefault("apiVersion", "autoscaling/v1")
        scale.setdefault("kind", "Scale")
        errors = api.schemas.errors(scale)
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if errors or replicas < 0:
            raise Invalid(
                f'Scale.autoscaling "{name}" is invalid: '
                + (
                    ", ".join(f"{e['field']}: {e['message']}" for e in errors)
                    or "spec.replicas: must be >= 0"
                ),
                kind="Scale",
                name=name,
                causes=errors,
            )
        sent_rv = (scale.get("metadata") or {}).get("resourceVersion")
        if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
            raise api.conflict(resource, name)
        new = clone(old)
        new["spec"]["replicas"] = replicas
        new["metadata"].pop("resourceVersion")
        api.write_update(resource, old, new, None, dry_run)
        return get_scale(api, resource, name, namespace)


def patch_scale(
    api: Api, resource: ResourceType, name: str, patch_type: str, body: Any, namespace: str | None
) -> Obj:
    scale = get_scale(api, resource, name, namespace)
    if patch_type == patching.JSON_PATCH:
        patched = patching.json_patch(scale, body)
    else:
        patched = patching.merge_patch(scale, body)
    return update_scale(api, resource, name, patched, namespace)
