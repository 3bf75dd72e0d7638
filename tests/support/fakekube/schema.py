"""The Kubernetes OpenAPI schema of one release, as shipped by ``kubernetes-validate``.

Used twice: to validate every object written (strict mode, so unknown fields fail), and
to learn each list's merge strategy (``x-kubernetes-patch-merge-key``, ``list-type``),
which strategic-merge patches and server-side apply need.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Mapping
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import jsonschema.exceptions  # type: ignore[import-untyped]
import referencing
from kubernetes_validate import utils as kv_utils

from .errors import FakeKubeError
from .resources import KUBERNETES_VERSION

Node = Mapping[str, Any]
_EMPTY: Node = {}


class Schemas:
    """Cached schemas, validators and list strategies for one Kubernetes version."""

    def __init__(self, version: str = KUBERNETES_VERSION) -> None:
        self.version = version
        self._dir = f"kubernetes-json-schema/v{version}.0-local-strict"
        self._lock = threading.Lock()
        self._roots: dict[tuple[str, str], Node] = {}
        self._validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
        self._definitions: Node | None = None
        self._registry: referencing.Registry[Any] | None = None

    def _load(self, filename: str) -> Node:
        try:
            contents: Node = kv_utils.schema_contents(f"{self._dir}/{filename}", self.version)
        except (FileNotFoundError, kv_utils.VersionNotSupportedError) as exc:
            raise FakeKubeError(f"no schema {filename} for Kubernetes {self.version}") from exc
        return contents

    @property
    def definitions(self) -> Node:
        with self._lock:
            if self._definitions is None:
                self._definitions = self._load("_definitions.json")
                self._registry = referencing.Registry().with_resource(
                    self._definitions["$id"], referencing.Resource.from_contents(self._definitions)
                )
            return self._definitions

    def root(self, api_version: str, kind: str) -> Node:
        """The schema of a top-level kind."""
        key = (api_version, kind)
        if key not in self._roots:
            mangled = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
            self._roots[key] = self._load(f"{kind.lower()}-{mangled}.json")
        return self._roots[key]

    def validator(self, api_version: str, kind: str) -> jsonschema.protocols.Validator:
        key = (api_version, kind)
        if key not in self._validators:
            root = self.root(api_version, kind)
            _ = self.definitions
            assert self._registry is not None
            registry = self._registry.with_resource(
                root["$id"], referencing.Resource.from_contents(root)
            )
            self._validators[key] = jsonschema.Draft202012Validator(root, registry=registry)
        return self._validators[key]

    def errors(self, obj: Mapping[str, Any]) -> list[dict[str, str]]:
        """Every schema violation of ``obj``, as ``Status`` causes (field, reason, message)."""
        validator = self.validator(obj["apiVersion"], obj["kind"])
        causes: list[dict[str, str]] = []
        for found in validator.iter_errors(obj):
            best = jsonschema.exceptions.best_match(found.context) if found.context else None
            causes.extend(_causes(best or found))
        return causes

    # --- navigation for merge strategies ---------------------------------------------

    def resolve(self, node: Node | None) -> Node:
        if not node:
            return _EMPTY
        ref = node.get("$ref")
        if isinstance(ref, str) and "#/$defs/" in ref:
            resolved: Node = self.definitions["$defs"][ref.split("#/$defs/", 1)[1]]
            return resolved
        return node

    def child(self, node: Node, key: str) -> Node:
        """The schema of field ``key`` of an object, or of a value of a map."""
        node = self.resolve(node)
        props = node.get("properties")
        if isinstance(props, Mapping) and key in props:
            found: Node = props[key]
            return found
        extra = node.get("additionalProperties")
        return extra if isinstance(extra, Mapping) else _EMPTY

    def items(self, node: Node) -> Node:
        items = node.get("items")
        return items if isinstance(items, Mapping) else _EMPTY


def _field_path(path: Any) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _join(base: str, name: str) -> str:
    return f"{base}.{name}" if base else name


def _causes(error: jsonschema.exceptions.ValidationError) -> list[dict[str, str]]:
    base = _field_path(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, Mapping):
        return [
            {"reason": "FieldValueRequired", "message": "Required value", "field": _join(base, n)}
            for n in error.validator_value
            if n not in instance
        ]
    if error.validator == "additionalProperties" and isinstance(instance, Mapping):
        known = set(error.schema.get("properties", {}))
        return [
            {
                "reason": "FieldValueInvalid",
                "message": f'unknown field "{_join(base, n)}"',
                "field": _join(base, n),
            }
            for n in instance
            if n not in known
        ]
    if error.validator == "type":
        return [{"reason": "FieldValueTypeInvalid", "message": error.message, "field": base}]
    if error.validator == "enum":
        return [{"reason": "FieldValueNotSupported", "message": error.message, "field": base}]
    return [{"reason": "FieldValueInvalid", "message": error.message, "field": base}]


@functools.cache
def schemas_for(version: str = KUBERNETES_VERSION) -> Schemas:
    """One shared, cached Schemas per Kubernetes version for the whole test process."""
    return Schemas(version)
