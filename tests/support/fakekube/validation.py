"""The checks a real API server makes beyond the OpenAPI schema: name formats, label
syntax, Deployment selectors, Pod specs and immutable fields."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import Invalid
from .resources import ResourceType
from .schema import Schemas
from .selectors import label_selector_matcher

Obj = dict[str, Any]
Cause = dict[str, str]

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_QUALIFIED = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_PORT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _cause(field: str, message: str, reason: str = "FieldValueInvalid") -> Cause:
    return {"reason": reason, "message": message, "field": field}


def name_errors(rule: str, name: str, field: str = "metadata.name") -> list[Cause]:
    """Why ``name`` is not a valid object name under ``rule`` (empty when it is)."""
    if not name:
        return [
            _cause(field, "Required value: name or generateName is required", "FieldValueRequired")
        ]
    if rule == "path":
        if name in (".", "..") or "/" in name or "%" in name:
            return [_cause(field, f'Invalid value: "{name}": may not contain "/" or "%"')]
        return []
    pattern, limit, what = {
        "label": (_LABEL, 63, "a lowercase RFC 1123 label"),
        "dns1035": (_DNS1035, 63, "a DNS-1035 label"),
    }.get(rule, (_SUBDOMAIN, 253, "a lowercase RFC 1123 subdomain"))
    if len(name) > limit or not pattern.fullmatch(name):
        return [
            _cause(
                field,
                f'Invalid value: "{name}": must be {what} (lowercase alphanumerics and "-", '
                f"at most {limit} characters)",
            )
        ]
    return []


def _labels_errors(labels: Any, field: str) -> list[Cause]:
    errors: list[Cause] = []
    for key, value in (labels or {}).items():
        prefix, _, name = key.rpartition("/")
        bad_key = (
            not name
            or len(name) > 63
            or not _QUALIFIED.fullmatch(name)
            or (prefix and (len(prefix) > 253 or not _SUBDOMAIN.fullmatch(prefix)))
        )
        if bad_key:
            errors.append(
                _cause(f"{field}", f'Invalid value: "{key}": name part must be a qualified name')
            )
        if value and (len(value) > 63 or not _LABEL_VALUE.fullmatch(value)):
            errors.append(
                _cause(
                    f"{field}",
                    f'Invalid value: "{value}": a valid label must be 63 characters or less',
                )
            )
    return errors


def _pod_spec_errors(
    spec: Mapping[str, Any], field: str, restart_policies: tuple[str, ...]
) -> list[Cause]:
    errors: list[Cause] = []
    containers = spec.get("containers") or []
    if not containers:
        errors.append(_cause(f"{field}.containers", "Required value", "FieldValueRequired"))
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(group) or []):
            where = f"{field}.{group}[{i}]"
            name = container.get("name", "")
            if not _LABEL.fullmatch(name) or len(name) > 63:
                errors.append(
                    _cause(f"{where}.name", f'Invalid value: "{name}": must be a DNS label')
                )
            if name in seen:
                errors.append(
                    _cause(f"{where}.name", f'Duplicate value: "{name}"', "FieldValueDuplicate")
                )
            seen.add(name)
            if not container.get("image"):
                errors.append(_cause(f"{where}.image", "Required value", "FieldValueRequired"))
            for j, port in enumerate(container.get("ports") or []):
                port_name = port.get("name")
                if port_name is not None and (
                    len(port_name) > 15 or not _PORT_NAME.fullmatch(port_name)
                ):
                    errors.append(
                        _cause(
                            f"{where}.ports[{j}].name",
                            f'Invalid value: "{port_name}": must be an IANA_SVC_NAME',
                        )
                    )
    policy = spec.get("restartPolicy")
    if policy not in restart_policies:
        allowed = ", ".join(f'"{p}"' for p in restart_policies)
        errors.append(
            _cause(
                f"{field}.restartPolicy",
                f"Unsupported value: {policy!r}: supported values: {allowed}",
                "FieldValueNotSupported",
            )
        )
    return errors


def _workload_errors(kind: str, spec: Mapping[str, Any]) -> list[Cause]:
    errors: list[Cause] = []
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    selector = spec.get("selector")
    if kind in ("Deployment", "ReplicaSet"):
        if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            errors.append(
                _cause("spec.selector", "Invalid value: empty selector is invalid for deployment")
            )
        elif not label_selector_matcher(selector)(labels):
            errors.append(
                _cause(
                    "spec.template.metadata.labels",
                    "Invalid value: `selector` does not match template `labels`",
                )
            )
        if spec.get("replicas", 0) < 0:
            errors.append(
                _cause("spec.replicas", "Invalid value: must be greater than or equal to 0")
            )
        policies: tuple[str, ...] = ("Always",)
    else:
        policies = ("OnFailure", "Never")
    errors.extend(_labels_errors(labels, "spec.template.metadata.labels"))
    errors.extend(_pod_spec_errors(template.get("spec") or {}, "spec.template.spec", policies))
    return errors


def _service_errors(spec: Mapping[str, Any]) -> list[Cause]:
    errors: list[Cause] = []
    ports = spec.get("ports") or []
    headless = spec.get("clusterIP") == "None"
    if not ports and spec.get("type") != "ExternalName" and not headless:
        errors.append(_cause("spec.ports", "Required value", "FieldValueRequired"))
    names = [p.get("name") for p in ports]
    for i, name in enumerate(names):
        if len(ports) > 1 and not name:
            errors.append(_cause(f"spec.ports[{i}].name", "Required value", "FieldValueRequired"))
        elif name and names.index(name) != i:
            errors.append(
                _cause(f"spec.ports[{i}].name", f'Duplicate value: "{name}"', "FieldValueDuplicate")
            )
    return errors


def _immutable(field: str, old: Any, new: Any) -> list[Cause]:
    if old != new:
        return [_cause(field, "Invalid value: field is immutable")]
    return []


def _pod_spec_mutable_parts_removed(spec: Mapping[str, Any]) -> Obj:
    """A pod spec without what an update may change: images, deadline, added tolerations."""
    trimmed = {k: v for k, v in spec.items() if k not in ("activeDeadlineSeconds", "tolerations")}
    for group in ("containers", "initContainers"):
        if group in trimmed:
            trimmed[group] = [{k: v for k, v in c.items() if k != "image"} for c in trimmed[group]]
    return trimmed


def _update_errors(kind: str, obj: Obj, old: Obj) -> list[Cause]:
    spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
    if kind == "Pod" and _pod_spec_mutable_parts_removed(spec) != _pod_spec_mutable_parts_removed(
        old_spec
    ):
        return [
            _cause(
                "spec",
                "Forbidden: pod updates may not change fields other than "
                "`spec.containers[*].image`, `spec.initContainers[*].image`, "
                "`spec.activeDeadlineSeconds` or "
                "`spec.tolerations` (only additions to existing tolerations)",
                "FieldValueForbidden",
            )
        ]
    if kind in ("Deployment", "ReplicaSet"):
        return _immutable("spec.selector", old_spec.get("selector"), spec.get("selector"))
    if kind == "Job":
        return _immutable(
            "spec.selector", old_spec.get("selector"), spec.get("selector")
        ) + _immutable("spec.template", old_spec.get("template"), spec.get("template"))
    if kind == "Service":
        return _immutable("spec.clusterIP", old_spec.get("clusterIP"), spec.get("clusterIP"))
    if kind in ("ConfigMap", "Secret") and old.get("immutable"):
        errors = _immutable("data", old.get("data"), obj.get("data"))
        return errors + _immutable("immutable", True, obj.get("immutable"))
    return []


class Validator:
    """Schema (strict) plus semantic checks; raises Invalid with every cause found."""

    def __init__(self, schemas: Schemas) -> None:
        self.schemas = schemas

    def check(self, resource: ResourceType, obj: Obj, old: Obj | None = None) -> None:
        meta = obj.get("metadata") or {}
        causes = self.schemas.errors(obj)
        if not causes:
            causes.extend(name_errors(resource.name_rule, meta.get("name", "")))
            causes.extend(_labels_errors(meta.get("labels"), "metadata.labels"))
            spec = obj.get("spec") or {}
            if resource.kind in ("Deployment", "ReplicaSet", "Job"):
                causes.extend(_workload_errors(resource.kind, spec))
            elif resource.kind == "Pod":
                causes.extend(_pod_spec_errors(spec, "spec", ("Always", "OnFailure", "Never")))
            elif resource.kind == "Service":
                causes.extend(_service_errors(spec))
            if old is not None:
                causes.extend(_update_errors(resource.kind, obj, old))
        if causes:
            details = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
            if len(causes) > 1:
                details = f"[{details}]"
            raise Invalid(
                f'{resource.qualified_kind()} "{meta.get("name", "")}" is invalid: {details}',
                kind=resource.kind,
                name=meta.get("name", ""),
                group=resource.group,
                causes=causes,
            )
