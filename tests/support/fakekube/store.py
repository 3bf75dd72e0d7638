"""The object store: thread-safe, one global resourceVersion counter, and a history of
changes that watches replay from any resourceVersion they ask for."""

from __future__ import annotations

import builtins
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import Gone, NotFound
from .objects import clone
from .resources import Registry, ResourceType
from .selectors import label_selector_matcher, parse_label_selector

Obj = dict[str, Any]
Key = tuple[str, str, str]


@dataclass(frozen=True)
class StoreEvent:
    """One change, as a watch reports it; ``old`` is the object before a MODIFIED."""

    resource_version: int
    type: str
    resource: ResourceType
    object: Obj
    old: Obj | None = None


@dataclass(frozen=True)
class WriteRecord:
    """One write that changed the store, so tests can assert that none happened."""

    type: str
    kind: str
    namespace: str
    name: str
    resource_version: int


Listener = Callable[[StoreEvent], None]


def _key(resource: ResourceType, namespace: str | None, name: str) -> Key:
    return (resource.resource_id, namespace or "" if resource.namespaced else "", name)


class Store:
    """Objects by (resource, namespace, name); reads hand out copies, never live objects."""

    def __init__(self, registry: Registry, history_size: int = 20_000) -> None:
        self.registry = registry
        self._cond = threading.Condition()
        self._objects: dict[Key, Obj] = {}
        self._rv = 0
        self._history: deque[StoreEvent] = deque(maxlen=history_size)
        self._listeners: list[Listener] = []
        self._closed = False
        self.writes: list[WriteRecord] = []

    @property
    def resource_version(self) -> int:
        with self._cond:
            return self._rv

    def _type(self, kind: str | ResourceType) -> ResourceType:
        return kind if isinstance(kind, ResourceType) else self.registry.resolve(kind)

    # --- reads ---------------------------------------------------------------------------

    def find(self, kind: str | ResourceType, name: str, namespace: str | None = None) -> Obj | None:
        resource = self._type(kind)
        with self._cond:
            found = self._objects.get(_key(resource, namespace, name))
            return clone(found) if found is not None else None

    def get(self, kind: str | ResourceType, name: str, namespace: str | None = None) -> Obj:
        """The object, or NotFound; ``kind`` may be a kind, plural or short name."""
        resource = self._type(kind)
        found = self.find(resource, name, namespace)
        if found is None:
            raise NotFound(
                f"{resource.plural}{'.' + resource.group if resource.group else ''} "
                f'"{name}" not found',
                kind=resource.plural,
                name=name,
                group=resource.group,
            )
        return found

    def list(
        self,
        kind: str | ResourceType,
        namespace: str | None = None,
        label_selector: str | Mapping[str, str] | None = None,
        predicate: Callable[[Obj], bool] | None = None,
    ) -> list[Obj]:
        """Objects of a kind sorted by namespace and name, optionally filtered by labels."""
        resource = self._type(kind)
        if isinstance(label_selector, Mapping):
            labels_match = label_selector_matcher({"matchLabels": dict(label_selector)})
        else:
            labels_match = parse_label_selector(label_selector or "")
        with self._cond:
            chosen = [
                clone(obj)
                for (rid, ns, _), obj in sorted(self._objects.items())
                if rid == resource.resource_id
                and (not namespace or ns == namespace)
                and labels_match(obj.get("metadata", {}).get("labels") or {})
                and (predicate is None or predicate(obj))
            ]
        return chosen

    # --- writes --------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` after every change, outside the store's lock."""
        self._listeners.append(listener)

    def _commit(self, resource: ResourceType, event_type: str, obj: Obj, old: Obj | None) -> Obj:
        meta = obj["metadata"]
        key = _key(resource, meta.get("namespace"), meta["name"])
        with self._cond:
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            if event_type == "DELETED":
                self._objects.pop(key, None)
            else:
                self._objects[key] = clone(obj)
            event = StoreEvent(self._rv, event_type, resource, clone(obj), old)
            self._history.append(event)
            self.writes.append(WriteRecord(event_type, resource.kind, key[1], key[2], self._rv))
            self._cond.notify_all()
        for listener in list(self._listeners):
            listener(event)
        return clone(obj)

    def insert(self, resource: ResourceType, obj: Obj) -> Obj:
        return self._commit(resource, "ADDED", obj, None)

    def update(self, resource: ResourceType, obj: Obj, old: Obj) -> Obj:
        return self._commit(resource, "MODIFIED", obj, old)

    def remove(self, resource: ResourceType, obj: Obj) -> Obj:
        return self._commit(resource, "DELETED", obj, None)

    def clear_writes(self) -> None:
        with self._cond:
            self.writes.clear()

    # --- history for watches -------------------------------------------------------------

    def events_after(self, resource_version: int) -> builtins.list[StoreEvent]:
        """Changes newer than ``resource_version``; Gone when the history no longer has them."""
        with self._cond:
            if self._history and resource_version < self._history[0].resource_version - 1:
                raise Gone(f"too old resource version: {resource_version} ({self._rv})")
            return [e for e in self._history if e.resource_version > resource_version]

    def wait_after(self, resource_version: int, timeout: float) -> builtins.list[StoreEvent]:
        """Block until there is a change after ``resource_version`` or the timeout passes."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._rv > resource_version, timeout)
        return self.events_after(resource_version)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Wake every watch so the server can stop."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def snapshot(
        self, resources: Iterable[ResourceType]
    ) -> tuple[int, builtins.list[tuple[ResourceType, Obj]]]:
        """Every object of the given types and the resourceVersion they are current at."""
        ids = {r.resource_id: r for r in resources}
        with self._cond:
            items = [
                (ids[rid], clone(obj))
                for (rid, _, _), obj in sorted(self._objects.items())
                if rid in ids
            ]
            return self._rv, items
