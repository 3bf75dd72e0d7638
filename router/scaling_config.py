"""The configuration of the router's own scaling (`self_scaling:`), and Kubernetes quantities.

The defaults are the documented behaviour: up (a bigger CPU/memory size) when the routing time
stays over its threshold, out (one more router) when it keeps staying over, down (a smaller
size) and then in (one router fewer) when CPU use stays low; never on a DevTest cluster.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_FACTORS = {
    None: Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
}

PositiveFloat = Annotated[float, Field(gt=0)]
Percent = Annotated[float, Field(gt=0, le=100)]


def parse_quantity(text: str) -> Decimal:
    """A Kubernetes quantity ("500m", "1", "512Mi", "2Gi") as a number of units."""
    match = _QUANTITY.match(str(text).strip())
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity such as 500m, 2 or 512Mi")
    return Decimal(match.group(1)) * _FACTORS[match.group(2)]


def cpu_millis(text: str) -> int:
    return int(parse_quantity(text) * 1000)


def memory_bytes(text: str) -> int:
    return int(parse_quantity(text))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RouterSize(_Strict):
    """One size step of a router pod: its CPU and memory requests (and equal limits)."""

    cpu: str
    memory: str

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, value: str) -> str:
        if parse_quantity(value) <= 0:
            raise ValueError("must be more than zero")
        return value

    @property
    def cpu_millis(self) -> int:
        return cpu_millis(self.cpu)

    @property
    def memory_bytes(self) -> int:
        return memory_bytes(self.memory)


DEFAULT_SIZES = (
    RouterSize(cpu="500m", memory="512Mi"),
    RouterSize(cpu="1", memory="1Gi"),
    RouterSize(cpu="2", memory="2Gi"),
    RouterSize(cpu="4", memory="4Gi"),
)


class SelfScalingConfig(_Strict):
    """When and how far the router scales itself; see docs/router.md, "The router scales itself".

    Up and out follow the routing time (the time requests wait for the router itself); down
    and in follow CPU use as a share of a router's CPU size. A change needs its condition to
    hold in every sample for the `*_after_seconds`; after a change, `*_cooldown_seconds` pass
    before the next one; a step down or in must leave the projected CPU use under
    `max_cpu_after_change_percent`, so it cannot cause the next step up.
    """

    enabled: bool = True
    target: Literal["none", "kubernetes"] = "none"
    namespace: str | None = None  # default: peers.namespace
    deployment: str = "aksflight-router"
    container: str = "router"
    resize: Literal["auto", "in-place", "rolling"] = "auto"
    refresh_seconds: PositiveFloat = 10.0
    routing_time_percentile: Literal[50, 90, 95, 99] = 99
    routing_time_threshold_ms: PositiveFloat = 15.0
    up_after_seconds: PositiveFloat = 30.0
    out_after_seconds: PositiveFloat = 120.0
    down_cpu_percent: Percent = 30.0
    in_cpu_percent: Percent = 20.0
    down_after_seconds: PositiveFloat = 300.0
    max_cpu_after_change_percent: Percent = 60.0
    up_cooldown_seconds: Annotated[float, Field(ge=0)] = 60.0
    down_cooldown_seconds: Annotated[float, Field(ge=0)] = 300.0
    min_replicas: Annotated[int, Field(ge=1)] = 2
    max_replicas: Annotated[int, Field(ge=1)] = 10
    sizes: list[RouterSize] = Field(default_factory=lambda: list(DEFAULT_SIZES), min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> SelfScalingConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        if self.in_cpu_percent > self.down_cpu_percent:
            raise ValueError("in_cpu_percent must not exceed down_cpu_percent")
        if self.max_cpu_after_change_percent <= self.down_cpu_percent:
            raise ValueError("max_cpu_after_change_percent must exceed down_cpu_percent")
        if self.out_after_seconds < self.up_after_seconds:
            raise ValueError("out_after_seconds must not be shorter than up_after_seconds")
        pairs = zip(self.sizes, self.sizes[1:], strict=False)
        if any(
            (b.cpu_millis, b.memory_bytes) <= (a.cpu_millis, a.memory_bytes)
            or b.cpu_millis < a.cpu_millis
            or b.memory_bytes < a.memory_bytes
            for a, b in pairs
        ):
            raise ValueError("sizes must grow from one step to the next")
        return self
