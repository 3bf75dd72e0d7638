"""What a probe pod's status says: still starting, finished, or stuck in a way that will
not resolve by itself (an image that cannot be pulled, no node that fits, a failing init
container). Read from the pod object alone, so a watch event is enough to decide."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# Waiting reasons a container does not leave without a change to the pod or the cluster.
STUCK_REASONS = frozenset(
    {
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "CrashLoopBackOff",
    }
)


class PodPhase(StrEnum):
    STARTING = "starting"  # scheduled or not, containers not running yet
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STUCK = "stuck"


@dataclass(frozen=True, slots=True)
class PodView:
    """The facts of one pod the collector acts on."""

    name: str
    phase: PodPhase
    node: str = ""
    address: str = ""
    reason: str = ""  # e.g. ImagePullBackOff, Unschedulable, ContainerCreating
    message: str = ""
    created: str = ""

    @property
    def done(self) -> bool:
        return self.phase in (PodPhase.SUCCEEDED, PodPhase.FAILED)


def _waiting(statuses: Any) -> tuple[str, str]:
    for status in statuses or ():
        waiting = status.state.waiting if status.state else None
        if waiting is not None and waiting.reason:
            return str(waiting.reason), str(waiting.message or "")
    return "", ""


def _failed_init(statuses: Any) -> tuple[str, str]:
    for status in statuses or ():
        terminated = status.state.terminated if status.state else None
        if terminated is not None and terminated.exit_code:
            return "InitFailed", f"init container {status.name} exited {terminated.exit_code}"
        waiting = status.state.waiting if status.state else None
        if waiting is not None and waiting.reason in STUCK_REASONS:
            reason = "InitCrashLoopBackOff" if waiting.reason == "CrashLoopBackOff" else ""
            return reason or str(waiting.reason), (
                f"init container {status.name}: {waiting.message or waiting.reason}"
            )
    return "", ""


def view_pod(pod: Any) -> PodView:
    """A `kubernetes.client.V1Pod` seen as what it means for a probe run."""
    status = pod.status
    spec = pod.spec
    common = {
        "name": pod.metadata.name,
        "node": (spec.node_name if spec else None) or "",
        "address": (status.pod_ip if status else None) or "",
        "created": str(pod.metadata.creation_timestamp or ""),
    }
    phase = status.phase if status else None
    if phase == "Succeeded":
        return PodView(phase=PodPhase.SUCCEEDED, **common)
    if phase == "Failed":
        reason, message = _waiting(status.container_statuses)
        return PodView(
            phase=PodPhase.FAILED,
            reason=str(status.reason or reason or "Failed"),
            message=str(status.message or message),
            **common,
        )
    for condition in (status.conditions if status else None) or ():
        if condition.type == "PodScheduled" and condition.status == "False":
            return PodView(
                phase=PodPhase.STUCK,
                reason=str(condition.reason or "Unschedulable"),
                message=str(condition.message or ""),
                **common,
            )
    reason, message = _failed_init(status.init_container_statuses if status else None)
    if reason:
        return PodView(phase=PodPhase.STUCK, reason=reason, message=message, **common)
    reason, message = _waiting(status.container_statuses if status else None)
    if reason in STUCK_REASONS:
        return PodView(phase=PodPhase.STUCK, reason=reason, message=message, **common)
    if phase == "Running":
        return PodView(phase=PodPhase.RUNNING, **common)
    return PodView(phase=PodPhase.STARTING, reason=reason or "Pending", message=message, **common)
