"""Service states, with v1's names and meaning, and what every target reports about a service."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ServiceState(StrEnum):
    """v1 states: `Healthy` and `Failed` are final; the others may still change."""

    TRANSITIONING = "Transitioning"
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    UNSCHEDULABLE = "Unschedulable"
    FAILED = "Failed"

    @property
    def final(self) -> bool:
        return self in (ServiceState.HEALTHY, ServiceState.FAILED)


@dataclass(frozen=True)
class ServiceInfo:
    """What `deploy` and `service state/list` report; `auth` is `key`, `token` or `none`."""

    name: str
    state: ServiceState
    scoring_uri: str
    swagger_uri: str
    auth: str
    target: str
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "state": self.state.value,
            "scoring_uri": self.scoring_uri,
            "swagger_uri": self.swagger_uri,
            "auth": self.auth,
            "target": self.target,
        }
        if self.detail:
            data["detail"] = self.detail
        data.update(self.extra)
        return data


def scoring_paths(base_url: str, name: str) -> tuple[str, str]:
    """v1's scoring and swagger URIs under a router's base URL."""
    prefix = f"{base_url.rstrip('/')}/api/v1/service/{name}"
    return f"{prefix}/score", f"{prefix}/swagger.json"
