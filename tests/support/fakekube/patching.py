"""The four ways to change an object in place: JSON patch, merge patch, strategic-merge
patch and server-side apply; list handling comes from the OpenAPI schema."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonpatch
import jsonpointer

from .errors import BadRequest, Invalid
from .objects import clone
from .schema import Node, Schemas

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)

Obj = dict[str, Any]


def json_patch(original: Obj, operations: Any) -> Obj:
    """RFC 6902; a failing ``test`` or a missing path is 422, as on a real server."""
    if not isinstance(operations, list):
        raise BadRequest("a JSON patch must be a list of operations")
    try:
        patched: Obj = jsonpatch.apply_patch(original, operations)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise Invalid(
            f"the server rejected our request due to an error in our request: {exc}"
        ) from exc
    return patched


def merge_patch(original: Any, patch: Any) -> Any:
    """RFC 7386: objects merge, null deletes, everything else (lists too) replaces."""
    if not isinstance(patch, Mapping):
        return clone(patch)
    result: dict[str, Any] = clone(dict(original)) if isinstance(original, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _strip_directives(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: _strip_directives(v)
            for k, v in value.items()
            if not k.startswith("$") and v is not None
        }
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


class Merger:
    """Strategic-merge and apply merges, which differ only in where list keys come from."""

    def __init__(self, schemas: Schemas) -> None:
        self.schemas = schemas

    def strategic(self, node: Node, original: Any, patch: Any) -> Any:
        if not isinstance(patch, Mapping) or not isinstance(original, Mapping):
            return _strip_directives(patch)
        directive = patch.get("$patch")
        if directive == "replace":
            return _strip_directives(patch)
        if directive == "delete":
            return None
        result = clone(dict(original))
        for key, value in patch.items():
            if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
                continue
            if key.startswith("$deleteFromPrimitiveList/"):
                name = key.split("/", 1)[1]
                result[name] = [v for v in result.get(name) or [] if v not in value]
                continue
            if value is None:
                result.pop(key, None)
                continue
            child = self.schemas.child(node, key)
            current = result.get(key)
            if isinstance(value, list) and isinstance(current, list):
                result[key] = self._strategic_list(child, current, value)
            else:
                merged = self.strategic(child, current, value)
                if merged is None:
                    result.pop(key, None)
                else:
                    result[key] = merged
        if "$retainKeys" in patch:
            result = {k: v for k, v in result.items() if k in patch["$retainKeys"]}
        return result

    def _strategic_list(self, node: Node, current: list[Any], patch: list[Any]) -> list[Any]:
        if "merge" not in str(node.get("x-kubernetes-patch-strategy", "")):
            return [_strip_directives(v) for v in patch]
        key = node.get("x-kubernetes-patch-merge-key")
        if not key:
            return current + [v for v in patch if v not in current]
        if any(isinstance(v, Mapping) and v.get("$patch") == "replace" for v in patch):
            return [_strip_directives(v) for v in patch if "$patch" not in v]
        item_node = self.schemas.items(node)
        result = clone(current)
        for item in patch:
            if not isinstance(item, Mapping):
                raise BadRequest(f"list items merged by {key!r} must be objects")
            index = next((i for i, v in enumerate(result) if v.get(key) == item.get(key)), None)
            if item.get("$patch") == "delete":
                if index is not None:
                    result.pop(index)
            elif index is None:
                result.append(_strip_directives(item))
            else:
                result[index] = self.strategic(item_node, result[index], item)
        return result

    # --- server-side apply ---------------------------------------------------------

    def apply(self, node: Node, original: Any, applied: Any) -> Any:
        """Merge an applied configuration: maps merge, keyed lists merge, atomic replace."""
        node = self.schemas.resolve(node)
        if (
            not isinstance(applied, Mapping)
            or not isinstance(original, Mapping)
            or node.get("x-kubernetes-map-type") == "atomic"
        ):
            return _strip_directives(applied)
        result = clone(dict(original))
        for key, value in applied.items():
            if value is None:
                continue
            child = self.schemas.child(node, key)
            current = result.get(key)
            if isinstance(value, list) and isinstance(current, list):
                result[key] = self._apply_list(child, current, value)
            else:
                result[key] = self.apply(child, current, value)
        return result

    def _apply_list(self, node: Node, current: list[Any], applied: list[Any]) -> list[Any]:
        list_type = node.get("x-kubernetes-list-type", "atomic")
        if list_type == "set":
            return current + [v for v in applied if v not in current]
        keys = node.get("x-kubernetes-list-map-keys")
        if list_type != "map" or not keys:
            return [_strip_directives(v) for v in applied]
        item_node = self.schemas.items(node)
        result = clone(current)
        for item in applied:
            index = next(
                (
                    i
                    for i, v in enumerate(result)
                    if all(v.get(k) == item.get(k) for k in keys if k in item)
                ),
                None,
            )
            if index is None:
                result.append(_strip_directives(item))
            else:
                result[index] = self.apply(item_node, result[index], item)
        return result

    def fieldset(self, node: Node, applied: Any) -> Obj:
        """The fields an applied configuration sets, in the ``FieldsV1`` format."""
        node = self.schemas.resolve(node)
        if not isinstance(applied, Mapping) or node.get("x-kubernetes-map-type") == "atomic":
            return {}
        fields: Obj = {}
        for key, value in applied.items():
            if value is None:
                continue
            child = self.schemas.resolve(self.schemas.child(node, key))
            keys = child.get("x-kubernetes-list-map-keys")
            if isinstance(value, list) and child.get("x-kubernetes-list-type") == "map" and keys:
                item_node = self.schemas.items(child)
                fields[f"f:{key}"] = {
                    "k:"
                    + json.dumps({k: item[k] for k in keys if k in item}, separators=(",", ":")): {
                        ".": {},
                        **self.fieldset(item_node, item),
                    }
                    for item in value
                    if isinstance(item, Mapping)
                }
            else:
                fields[f"f:{key}"] = self.fieldset(child, value)
        return fields


def union(a: Obj, b: Obj) -> Obj:
    """Two field sets together."""
    result = clone(a)
    for key, value in b.items():
        result[key] = union(result.get(key, {}), value)
    return result


def prune(value: Any, previous: Obj, current: Obj, others: Obj) -> None:
    """Remove what a manager applied before and no longer applies, unless another owns it."""
    for key, sub_previous in previous.items():
        sub_current, sub_other = current.get(key), others.get(key)
        if key.startswith("f:") and isinstance(value, dict):
            name = key[2:]
            if name not in value:
                continue
            if sub_current is None and sub_other is None:
                del value[name]
            elif sub_previous:
                prune(value[name], sub_previous, sub_current or {}, sub_other or {})
        elif key.startswith("k:") and isinstance(value, list):
            wanted = json.loads(key[2:])
            index = next(
                (
                    i
                    for i, item in enumerate(value)
                    if isinstance(item, Mapping)
                    and all(item.get(k) == v for k, v in wanted.items())
                ),
                None,
            )
            if index is None:
                continue
            if sub_current is None and sub_other is None:
                value.pop(index)
            else:
                prune(value[index], sub_previous, sub_current or {}, sub_other or {})
