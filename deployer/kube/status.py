"""A model Deployment's state from its status, pods, events and logs (v1's states), and
why it failed, mapped onto the connectivity phase and checks that explain it.

    image pull failure (ImagePullBackOff, ErrImagePull) -> model-deploy (the registry), or
        router-install for the router's own image
    init container failure (the model download)      -> model-deploy (the host it names)
    CrashLoopBackOff                                  -> the entry script's traceback: serving
        when it could not reach a dependency, else not a network problem
    Unschedulable (Insufficient cpu/memory)           -> not a network problem: resources
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from deployer.diagnosis import (
    Diagnosis,
    checks_for_host,
    diagnose_script_failure,
    first_diagnosis,
    image_registry,
)
from deployer.states import ServiceState
from rules.model import Phase

if TYPE_CHECKING:
    from rules.plan import Plan

Obj = dict[str, Any]
# (pod name, container, previous) -> log text
LogReader = Callable[[str, str, bool], str]
IMAGE_PULL = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName"})
_DOWNLOAD_HOST = re.compile(r"cannot download \S+ \(host ([^)\s]+)\)")


@dataclass(frozen=True)
class RolloutStatus:
    state: ServiceState
    desired: int
    ready: int
    updated: int
    diagnosis: Diagnosis | None = None

    @property
    def detail(self) -> str:
        return f"{self.ready}/{self.desired} replicas ready"


def _registry_checks(image: str, plan: Plan | None, phase: Phase) -> tuple[str, ...]:
    """The registry's checks: in the plan, every check of a host of that registry (the
    login server and its data endpoints), else `dns:`/`tcp:` ids for the host."""
    host = image_registry(image)
    if plan is not None:
        prefix = host.split(".", 1)[0] + "."
        found = tuple(
            cid
            for cid, check in plan.checks.items()
            if check.phase is phase and (check.target == host or check.target.startswith(prefix))
        )
        if found:
            return found
    return checks_for_host(host, 443, plan)


def _image_pull(status: Obj, plan: Plan | None, router: bool, init: bool = False) -> Diagnosis:
    waiting = (status.get("state") or {}).get("waiting") or {}
    image = str(status.get("image") or "")
    phase = Phase.ROUTER_INSTALL if router else Phase.MODEL_DEPLOY
    what = "the router's image" if router else "the model image"
    return Diagnosis(
        ServiceState.FAILED,
        str(waiting.get("reason") or "ImagePullBackOff"),
        f"{what} {image} cannot be pulled"
        + (" (init container)" if init else "")
        + f": {waiting.get('message', '')}".rstrip(": "),
        phase,
        _registry_checks(image, plan, phase),
        f"the nodes must resolve and reach {image_registry(image)} on 443 "
        "(or the image name is wrong)",
    )


def _init_failure(pod: Obj, status: Obj, logs: LogReader, plan: Plan | None) -> Diagnosis:
    name = pod["metadata"]["name"]
    text = logs(name, str(status.get("name")), False) or logs(name, str(status.get("name")), True)
    match = _DOWNLOAD_HOST.search(text)
    last = (status.get("lastState") or {}).get("terminated") or {}
    code = last.get("exitCode")
    if match:
        host = match.group(1)
        return Diagnosis(
            ServiceState.FAILED,
            "InitContainerFailed",
            f"the model download failed: cannot reach {host}",
            Phase.MODEL_DEPLOY,
            checks_for_host(host, 443, plan),
            f"the nodes must resolve and reach {host} on 443 (Azure Blob storage in v1)",
            text[-2000:],
        )
    return Diagnosis(
        ServiceState.FAILED,
        "InitContainerFailed",
        f"the init container {status.get('name')} failed (exit code {code})",
        Phase.MODEL_DEPLOY,
        (),
        "see `aksflight service logs NAME --init`",
        text[-2000:],
    )


def _unschedulable(pod: Obj) -> Diagnosis | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            message = str(condition.get("message") or "")
            return Diagnosis(
                ServiceState.UNSCHEDULABLE,
                "Unschedulable",
                message or "no node can run the pod",
                None,
                (),
                "not a network problem: lower cpu_cores/memory_gb or add nodes "
                "(the router scales replicas, never nodes)",
            )
    return None


def diagnose_pod(
    pod: Obj, logs: LogReader, plan: Plan | None, *, router: bool = False
) -> Diagnosis | None:
    """The first failure a pod shows, or None while it is fine or still starting."""
    unschedulable = _unschedulable(pod)
    if unschedulable is not None:
        return unschedulable
    status = pod.get("status") or {}
    for init in status.get("initContainerStatuses") or []:
        waiting = (init.get("state") or {}).get("waiting") or {}
        terminated = (init.get("state") or {}).get("terminated") or {}
        if waiting.get("reason") in IMAGE_PULL:
            return _image_pull(init, plan, router, init=True)
        failed = terminated.get("exitCode") not in (None, 0)
        if failed or waiting.get("reason") == "CrashLoopBackOff":
            return _init_failure(pod, init, logs, plan)
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in IMAGE_PULL:
            return _image_pull(container, plan, router)
        if waiting.get("reason") == "CrashLoopBackOff":
            name = pod["metadata"]["name"]
            log = logs(name, str(container.get("name")), True) or logs(
                name, str(container.get("name")), False
            )
            code = ((container.get("lastState") or {}).get("terminated") or {}).get("exitCode")
            diagnosis = diagnose_script_failure(log, plan, code)
            if router:
                return Diagnosis(
                    ServiceState.FAILED,
                    "CrashLoopBackOff",
                    f"the router keeps restarting: {diagnosis.message}",
                    Phase.ROUTER_STARTUP,
                    diagnosis.checks,
                    "the router must reach the API server (discovery, peers)",
                    diagnosis.logs,
                )
            return diagnosis
    return None


def rollout_status(
    deployment: Obj, pods: list[Obj], logs: LogReader, plan: Plan | None, *, router: bool = False
) -> RolloutStatus:
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    meta = deployment.get("metadata") or {}
    desired = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    total = int(status.get("replicas") or 0)
    ready = int(status.get("readyReplicas") or 0)
    observed = int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 1)
    if observed and updated >= desired and available >= desired and total == updated:
        return RolloutStatus(ServiceState.HEALTHY, desired, ready, updated)
    diagnoses = [d for pod in pods if (d := diagnose_pod(pod, logs, plan, router=router))]
    diagnosis = first_diagnosis(diagnoses)
    deadline = next(
        (
            c
            for c in status.get("conditions") or []
            if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
        ),
        None,
    )
    if deadline is not None:
        cause = diagnosis or Diagnosis(
            ServiceState.FAILED,
            "ProgressDeadlineExceeded",
            str(deadline.get("message") or "the rollout did not progress"),
        )
        diagnosis = replace(cause, state=ServiceState.FAILED)
    if diagnosis is not None:
        return RolloutStatus(diagnosis.state, desired, ready, updated, diagnosis)
    state = (
        ServiceState.UNHEALTHY if any(map(_restarted_unready, pods)) else ServiceState.TRANSITIONING
    )
    return RolloutStatus(state, desired, ready, updated)


def _restarted_unready(pod: Obj) -> bool:
    """Running, not ready, and already restarted (its liveness probe failed): v1's Unhealthy.
    A container still starting for the first time is Transitioning."""
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        running = "running" in (container.get("state") or {})
        if running and not container.get("ready") and int(container.get("restartCount") or 0) > 0:
            return True
    return False
