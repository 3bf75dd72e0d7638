"""The deployer's exceptions.

    DeployerError
    ├── DeployConfigError      bad input: a deployment or inference setting, a file, a name
    │                          (`field` names it); the CLI exits 2
    ├── GateFailed             the preflight found a failed check; carries the evaluation
    ├── EnvironmentBuildError  a local environment could not be built
    ├── TargetError            the target refused or failed an operation
    │   ├── ServiceNotFound    no service of that name on the target
    │   ├── HpaConflict        a HorizontalPodAutoscaler targets a model deployment
    │   └── KubeApiError       the Kubernetes API answered an error (`status`, `temporary`)
    └── DeploymentFailed       the service ended Failed or Unschedulable; carries the diagnosis

Each message is one line. Third-party exceptions are translated where they are caught
(`raise ... from exc`) and never leave the package.
"""

from __future__ import annotations

from typing import Any


class DeployerError(Exception):
    """Base of every error the deployer raises."""


class DeployConfigError(DeployerError):
    """A setting breaks a rule; `field` names it (empty for the file as a whole)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


class GateFailed(DeployerError):
    """The preflight gate stopped the step; `report` is the rendered findings."""

    def __init__(self, message: str, evaluation: Any, plan: Any, report: str) -> None:
        self.evaluation = evaluation
        self.plan = plan
        self.report = report
        super().__init__(message)


class EnvironmentBuildError(DeployerError):
    """Building a local environment (a virtualenv) failed; `log` is where pip wrote."""

    def __init__(self, message: str, log: str = "") -> None:
        self.log = log
        super().__init__(message)


class TargetError(DeployerError):
    """The target could not do what was asked."""


class ServiceNotFound(TargetError):
    def __init__(self, name: str, where: str) -> None:
        self.name = name
        super().__init__(f"no service named {name!r} on {where}")


class HpaConflict(TargetError):
    """v1 rule: never put a Kubernetes HPA on a model deployment; it fights the router."""


class KubeApiError(TargetError):
    """An API error, keyed by HTTP status; `temporary` ones (409, 429, 5xx) are retried."""

    def __init__(self, message: str, status: int | None, temporary: bool) -> None:
        self.status = status
        self.temporary = temporary
        super().__init__(message)


class DeploymentFailed(DeployerError):
    """The service did not become Healthy; `diagnosis` says why and which check explains it."""

    def __init__(self, message: str, state: str, diagnosis: Any = None) -> None:
        self.state = state
        self.diagnosis = diagnosis
        super().__init__(message)
