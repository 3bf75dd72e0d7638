"""The launcher: creates the run's namespace and Jobs, watches the probe pods, reads their
logs, and deletes everything it created — also when interrupted (Ctrl-C, SIGTERM).

The run is bounded by `LaunchSpec.timeout_s`: a pod that is stuck (its image cannot be
pulled, no node fits it, an init container fails) becomes an outcome once it has been
stuck for `stuck_grace_s`; one that has not finished at the deadline becomes a timeout
outcome with the last thing its status and Events said. Every API call has a request
timeout, so an API server that stops answering cannot hang the command either.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from preflight.incluster.errors import InClusterError, ProbeOutputError
from preflight.incluster.manifests import (
    CONTAINER,
    TARGET_LABEL,
    LaunchSpec,
    ProbeTarget,
    all_manifests,
    label_value,
    run_selector,
)
from preflight.incluster.pods import PodPhase, PodView, view_pod
from preflight.incluster.wire import ProbeReport, parse_report

REQUEST_TIMEOUT_S = 10.0
WATCH_WINDOW_S = 1
CLEANUP_WAIT_S = 30.0

OnProgress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class TargetOutcome:
    """How one target's probe ended: a report, or why there is none."""

    target: ProbeTarget
    pod: PodView | None
    report: ProbeReport | None = None
    reason: str = ""  # ImagePullBackOff, Unschedulable, Timeout, NoOutput, NoPod, ...
    problem: str = ""


@dataclass(slots=True)
class Cleanup:
    deleted: list[str] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class InClusterRun:
    namespace: str
    outcomes: tuple[TargetOutcome, ...]
    cleanup: Cleanup
    duration_s: float


def _api_error(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason or ''}".strip()
    return f"{type(exc).__name__}: {exc}"


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a CI runner cancelling the job) interrupts like Ctrl-C, so the `finally`
    that deletes what the run created also runs then."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def deferred_interrupts() -> Iterator[list[int]]:
    """Hold Ctrl-C and SIGTERM while cleaning up (a second Ctrl-C must not leave objects
    behind); the caller re-raises afterwards when one came. Cleanup is bounded by request
    timeouts, so holding them cannot hang the command."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def hold(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class Launcher:
    """One in-cluster run against `api` (a `kubernetes.client.ApiClient`)."""

    def __init__(
        self,
        api: Any,
        spec: LaunchSpec,
        *,
        stuck_grace_s: float = 15.0,
        cleanup_wait_s: float = CLEANUP_WAIT_S,
        clock: Callable[[], float] = time.monotonic,
        on_progress: OnProgress | None = None,
    ) -> None:
        self.api = api
        self.spec = spec
        self.core: Any = k8s.CoreV1Api(api)
        self.stuck_grace_s = stuck_grace_s
        self.cleanup_wait_s = cleanup_wait_s
        self.clock = clock
        self.on_progress = on_progress
        self.namespace_created = False
        self.cleanup = Cleanup()
        self._by_label = {label_value(t.name): t for t in spec.targets}

    def progress(self, message: str) -> None:
        if self.on_progress is not None:
            self.on_progress(message)

    # -- the run -------------------------------------------------------------------------
    def run(self) -> InClusterRun:
        started = self.clock()
        interrupted = False
        outcomes: list[TargetOutcome] = []
        try:
            with sigterm_interrupts():
                self.create()
                outcomes = self.collect()
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            with deferred_interrupts() as held:
                self.delete()
            if held and not interrupted:
                raise KeyboardInterrupt
        return InClusterRun(
            self.spec.namespace, tuple(outcomes), self.cleanup, self.clock() - started
        )

    def create(self) -> None:
        """Every manifest in order; the namespace must be new (never adopt another's)."""
        for manifest in all_manifests(self.spec):
            kind, name = manifest["kind"], manifest["metadata"]["name"]
            try:
                self._create(manifest)
            except ApiException as exc:
                if kind == "Namespace" and exc.status == 409:
                    raise InClusterError(
                        f"namespace {name} already exists; it is not this run's "
                        f"(delete it or choose another)"
                    ) from exc
                raise InClusterError(f"cannot create {kind} {name}: {_api_error(exc)}") from exc
            except (HTTPError, OSError) as exc:
                raise InClusterError(f"cannot create {kind} {name}: {_api_error(exc)}") from exc
            if kind == "Namespace":
                self.namespace_created = True
            self.progress(f"created {kind} {name}")

    def _create(self, manifest: dict[str, Any]) -> None:
        ns, kind = self.spec.namespace, manifest["kind"]
        timeout = REQUEST_TIMEOUT_S
        if kind == "Namespace":
            self.core.create_namespace(body=manifest, _request_timeout=timeout)
        elif kind == "ServiceAccount":
            self.core.create_namespaced_service_account(ns, manifest, _request_timeout=timeout)
        elif kind == "ConfigMap":
            self.core.create_namespaced_config_map(ns, manifest, _request_timeout=timeout)
        elif kind == "Role":
            rbac: Any = k8s.RbacAuthorizationV1Api(self.api)
            rbac.create_namespaced_role(ns, manifest, _request_timeout=timeout)
        elif kind == "RoleBinding":
            rbac = k8s.RbacAuthorizationV1Api(self.api)
            rbac.create_namespaced_role_binding(ns, manifest, _request_timeout=timeout)
        elif kind == "Job":
            batch: Any = k8s.BatchV1Api(self.api)
            batch.create_namespaced_job(ns, manifest, _request_timeout=timeout)
        else:  # pragma: no cover - all_manifests renders only the kinds above
            raise InClusterError(f"no way to create a {kind}")

    # -- watching ------------------------------------------------------------------------
    def collect(self) -> list[TargetOutcome]:
        """Watch the run's pods until every target has an outcome or the deadline passes."""
        deadline = self.clock() + self.spec.timeout_s
        views: dict[str, PodView] = {}
        stuck_since: dict[str, float] = {}
        outcomes: dict[str, TargetOutcome] = {}
        resource_version = ""
        while len(outcomes) < len(self.spec.targets) and self.clock() < deadline:
            window = max(1, min(WATCH_WINDOW_S, int(deadline - self.clock()) or 1))
            try:
                resource_version = self._observe(views, resource_version, window)
            except ApiException as exc:
                if exc.status != 410:
                    raise InClusterError(f"cannot watch the probe pods: {_api_error(exc)}") from exc
                resource_version = ""  # the watch expired: list again
            except (HTTPError, OSError):
                resource_version = ""  # a dropped watch: list again next round
                time.sleep(0.2)
            self._settle(views, stuck_since, outcomes)
        for target in self.spec.targets:
            if target.name not in outcomes:
                outcomes[target.name] = self._timed_out(target, views.get(target.name))
        return [outcomes[t.name] for t in self.spec.targets]

    def _target_of(self, pod: Any) -> ProbeTarget | None:
        labels = pod.metadata.labels or {}
        return self._by_label.get(labels.get(TARGET_LABEL, ""))

    def _observe(self, views: dict[str, PodView], resource_version: str, window: int) -> str:
        """Update `views` from a list (no resource version yet) or one watch window; return
        the resource version to go on from."""
        selector = run_selector(self.spec)
        ns = self.spec.namespace
        if not resource_version:
            listed = self.core.list_namespaced_pod(
                ns, label_selector=selector, _request_timeout=REQUEST_TIMEOUT_S
            )
            for pod in listed.items:
                self._record(views, pod, deleted=False)
            return str(listed.metadata.resource_version)
        watcher = k8s_watch.Watch()  # type: ignore[no-untyped-call]
        for event in watcher.stream(  # type: ignore[no-untyped-call]
            self.core.list_namespaced_pod,
            ns,
            label_selector=selector,
            resource_version=resource_version,
            timeout_seconds=window,
            _request_timeout=window + REQUEST_TIMEOUT_S,
        ):
            pod = event["object"]
            if event["type"] == "ERROR":
                raise ApiException(status=int(getattr(pod, "code", 0) or 410))
            self._record(views, pod, deleted=event["type"] == "DELETED")
            resource_version = str(pod.metadata.resource_version)
        return resource_version

    def _record(self, views: dict[str, PodView], pod: Any, *, deleted: bool) -> None:
        target = self._target_of(pod)
        if target is None:
            return
        current = views.get(target.name)
        if deleted:
            if current is not None and current.name == pod.metadata.name and not current.done:
                views[target.name] = PodView(
                    current.name,
                    PodPhase.FAILED,
                    current.node,
                    current.address,
                    "Deleted",
                    "the pod was deleted before it finished",
                )
            return
        view = view_pod(pod)
        if current is None or current.name == view.name or view.created >= current.created:
            views[target.name] = view

    def _settle(
        self,
        views: dict[str, PodView],
        stuck_since: dict[str, float],
        outcomes: dict[str, TargetOutcome],
    ) -> None:
        now = self.clock()
        for name, view in views.items():
            if name in outcomes:
                continue
            target = next(t for t in self.spec.targets if t.name == name)
            if view.done:
                outcomes[name] = self._finished(target, view)
                self.progress(f"{name}: pod {view.name} {view.phase.value}")
            elif view.phase is PodPhase.STUCK:
                since = stuck_since.setdefault(name, now)
                if now - since >= self.stuck_grace_s:
                    outcomes[name] = TargetOutcome(
                        target, view, None, view.reason, self._explain(view)
                    )
                    self.progress(f"{name}: pod {view.name} stuck in {view.reason}")
            else:
                stuck_since.pop(name, None)

    def _finished(self, target: ProbeTarget, view: PodView) -> TargetOutcome:
        try:
            log = self.core.read_namespaced_pod_log(
                view.name,
                self.spec.namespace,
                container=CONTAINER,
                _request_timeout=REQUEST_TIMEOUT_S,
            )
        except (ApiException, HTTPError, OSError) as exc:
            return TargetOutcome(
                target, view, None, "NoOutput", f"cannot read the log: {_api_error(exc)}"
            )
        try:
            report = parse_report(log if isinstance(log, str) else str(log))
        except ProbeOutputError as exc:
            why = f"pod {view.phase.value}"
            if view.reason:
                why += f" ({view.reason}{': ' + view.message if view.message else ''})"
            return TargetOutcome(target, view, None, "NoOutput", f"{why}; {exc}")
        return TargetOutcome(target, view, report)

    def _timed_out(self, target: ProbeTarget, view: PodView | None) -> TargetOutcome:
        limit = f"{self.spec.timeout_s:g} s"
        if view is None:
            return TargetOutcome(target, None, None, "NoPod", f"the Job made no pod within {limit}")
        last = self._explain(view)
        return TargetOutcome(
            target,
            view,
            None,
            view.reason if view.phase is PodPhase.STUCK else "Timeout",
            f"pod {view.name} did not finish within {limit} ({view.phase.value}"
            + (f": {last}" if last else "")
            + ")",
        )

    def _explain(self, view: PodView) -> str:
        """The pod's own reason and message, and its latest warning Event (where a missing
        CNI or a failed volume shows, which the status does not)."""
        parts = [f"{view.reason}: {view.message}" if view.message else view.reason]
        warning = self._last_warning(view.name)
        if warning and warning not in parts[0]:
            parts.append(warning)
        return "; ".join(p for p in parts if p)

    def _last_warning(self, pod_name: str) -> str:
        try:
            events = self.core.list_namespaced_event(
                self.spec.namespace,
                field_selector=f"involvedObject.name={pod_name}",
                _request_timeout=REQUEST_TIMEOUT_S,
            ).items
        except (ApiException, HTTPError, OSError):
            return ""
        warnings = [e for e in events if e.type == "Warning"]
        if not warnings:
            return ""
        latest = max(warnings, key=lambda e: str(e.last_timestamp or e.event_time or ""))
        return f"{latest.reason}: {latest.message}"

    # -- cleanup -------------------------------------------------------------------------
    def delete(self) -> None:
        """Delete the namespace (and so everything in it), then wait a bounded time for it
        to be gone. Only a namespace this run created is ever deleted."""
        if not self.namespace_created:
            return
        name = self.spec.namespace
        try:
            self.core.delete_namespace(
                name, propagation_policy="Background", _request_timeout=REQUEST_TIMEOUT_S
            )
        except ApiException as exc:
            if exc.status != 404:
                self.cleanup.errors.append(f"delete namespace {name}: {_api_error(exc)}")
                self.cleanup.remaining.append(f"Namespace {name}")
                return
        except (HTTPError, OSError) as exc:
            self.cleanup.errors.append(f"delete namespace {name}: {_api_error(exc)}")
            self.cleanup.remaining.append(f"Namespace {name}")
            return
        self.cleanup.deleted.append(f"Namespace {name}")
        self.progress(f"deleted Namespace {name}")
        give_up = self.clock() + self.cleanup_wait_s
        while self.clock() < give_up:
            try:
                self.core.read_namespace(name, _request_timeout=REQUEST_TIMEOUT_S)
            except ApiException as exc:
                if exc.status == 404:
                    return
            except (HTTPError, OSError):
                pass
            time.sleep(0.5)
        self.cleanup.remaining.append(f"Namespace {name} (still terminating)")
