"""What tests use to watch and steer the server: the request log, injected faults,
the access policy behind SelfSubjectAccessReview, and pod logs."""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass, field
from typing import Any

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class RequestRecord:
    """One request as the server received it; ``status`` is what it answered."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    content_type: str
    status: int = 0


class RequestLog:
    """Every request, in order; ``writes()`` are the ones that may change the cluster."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    @property
    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def writes(self) -> list[RequestRecord]:
        return [r for r in self.records if r.method in WRITE_METHODS]

    def matching(self, method: str = "*", path: str = "*") -> list[RequestRecord]:
        return [r for r in self.records if _matches(method, path, r.method, r.path)]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


def _matches(method: str, pattern: str, actual_method: str, actual_path: str) -> bool:
    return (method in ("*", actual_method.upper())) and fnmatch.fnmatchcase(actual_path, pattern)


@dataclass
class Fault:
    """Answer the next ``times`` requests matching method and path glob with ``status``."""

    method: str
    path: str
    status: int
    times: int = 1
    message: str = ""
    retry_after: int | None = None
    delay: float = 0.0
    hits: int = 0


class Faults:
    """Injected failures, consumed in the order they were added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        method: str,
        path: str,
        status: int,
        times: int = 1,
        message: str = "",
        retry_after: int | None = None,
        delay: float = 0.0,
    ) -> Fault:
        """``path`` is a glob over the URL path (``*/deployments*``); ``method`` may be ``*``.

        A 429 gets ``Retry-After`` (1 s unless told); ``delay`` stalls the answer first."""
        if status == 429 and retry_after is None:
            retry_after = 1
        fault = Fault(method.upper(), path, status, times, message, retry_after, delay)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and _matches(fault.method, fault.path, method, path):
                    fault.times -= 1
                    fault.hits += 1
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


@dataclass(frozen=True)
class AccessRule:
    allowed: bool
    verb: str = "*"
    resource: str = "*"
    namespace: str = "*"
    group: str = "*"
    subresource: str = "*"


@dataclass
class AccessPolicy:
    """Answers SelfSubjectAccessReviews; with ``enforce`` also refuses real requests (403).

    Rules are checked newest first; ``default`` decides when none matches."""

    default: bool = True
    enforce: bool = False
    rules: list[AccessRule] = field(default_factory=list)

    def allow(
        self, verb: str = "*", resource: str = "*", namespace: str = "*", group: str = "*"
    ) -> None:
        self.rules.append(AccessRule(True, verb, resource, namespace, group))

    def deny(
        self,
        verb: str = "*",
        resource: str = "*",
        namespace: str = "*",
        group: str = "*",
        subresource: str = "*",
    ) -> None:
        self.rules.append(AccessRule(False, verb, resource, namespace, group, subresource))

    def decide(
        self, verb: str, resource: str, namespace: str = "", group: str = "", subresource: str = ""
    ) -> bool:
        for rule in reversed(self.rules):
            wanted = (rule.verb, rule.resource, rule.namespace, rule.group, rule.subresource)
            actual = (verb, resource, namespace, group, subresource)
            if all(w == "*" or w == a for w, a in zip(wanted, actual, strict=True)):
                return rule.allowed
        return self.default


class PodLogs:
    """Log text by (namespace, pod, container); container None means every container."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[tuple[str, str, str | None], str] = {}

    def set(self, namespace: str, pod: str, text: str, container: str | None = None) -> None:
        with self._lock:
            self._logs[(namespace, pod, container)] = text

    def get(self, namespace: str, pod: str, container: str | None) -> str | None:
        with self._lock:
            found = self._logs.get((namespace, pod, container))
            return found if found is not None else self._logs.get((namespace, pod, None))
