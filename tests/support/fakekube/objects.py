"""Copying JSON-shaped objects: the store hands out copies on every read, and
``copy.deepcopy`` is several times slower for plain dicts and lists."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def clone(value: T) -> T:
    """A deep copy of dicts, lists and scalars (all a Kubernetes object holds)."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [clone(v) for v in value]  # type: ignore[return-value]
    return value
