"""Owner references: who controls an object, what an owner's objects are, and pods made
from an owner's template."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from .objects import clone
from .resources import ResourceType
from .store import Obj

if TYPE_CHECKING:
    from .api import Api


def owner_ref(obj: Obj) -> Obj:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_of(obj: Obj) -> Obj | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def template_hash(template: Obj) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[int(digest[i : i + 2], 16) % len(alphabet)] for i in range(0, 20, 2))


def owned(api: Api, resource: ResourceType, owner: Obj) -> list[Obj]:
    """The objects of a type that name ``owner`` in their ownerReferences."""
    uid = owner["metadata"]["uid"]

    def is_owned(obj: Obj) -> bool:
        return any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or [])

    return api.store.list(resource, owner["metadata"].get("namespace"), predicate=is_owned)


def create_pod(api: Api, pod_type: ResourceType, owner: Obj, name: str) -> Obj:
    template = owner["spec"]["template"]
    metadata: dict[str, Any] = {
        "name": name,
        "labels": clone((template.get("metadata") or {}).get("labels") or {}),
        "ownerReferences": [owner_ref(owner)],
    }
    annotations = (template.get("metadata") or {}).get("annotations")
    if annotations:
        metadata["annotations"] = clone(annotations)
    created: Obj = api.create(
        pod_type,
        {"metadata": metadata, "spec": clone(template["spec"])},
        owner["metadata"].get("namespace"),
    )
    return created
