"""Small helpers for Kubernetes objects: fast copies (the store hands out a copy on
every read, and ``copy.deepcopy`` is several times slower for plain data), timestamps,
generated names and no-op detection."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, TypeVar

T = TypeVar("T")
Obj = dict[str, Any]


def clone(value: T) -> T:
    """A deep copy of dicts, lists and scalars (all a Kubernetes object holds)."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [clone(v) for v in value]  # type: ignore[return-value]
    return value


_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_suffix(length: int = 5) -> str:
    return "".join(secrets.choice(_NAME_CHARS) for _ in range(length))


def comparable(obj: Obj) -> Obj:
    """The object without what changes on every write, to detect no-op writes."""
    trimmed = clone(obj)
    meta = trimmed.get("metadata", {})
    meta.pop("resourceVersion", None)
    for entry in meta.get("managedFields") or []:
        entry.pop("time", None)
    return trimmed
