"""Replica sizing, the formula Azure ML v1 documents for AKS web services.

    replicas = ceil(requests_per_second × request_seconds / target_utilization
                    / max_concurrent_requests_per_replica)

The deploy configuration writes the utilisation as a percentage (70); any value above 1
reads as a percentage, so 70 and 0.7 mean the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rules.errors import SizingError


@dataclass(frozen=True, slots=True)
class ReplicaEstimate:
    replicas: int
    concurrent_requests: float
    target_utilization: float
    max_concurrent: int


def normalise_utilization(value: float) -> float:
    """70 → 0.70; 0.7 → 0.7. Must end in (0, 1]."""
    if not math.isfinite(value) or value <= 0:
        raise SizingError("target utilization must be a number above 0")
    fraction = value / 100 if value > 1 else value
    if fraction > 1:
        raise SizingError("target utilization must be at most 100 (percent) or 1.0")
    return fraction


def estimate_replicas(
    rps: float, request_seconds: float, target_utilization: float = 0.7, max_concurrent: int = 1
) -> ReplicaEstimate:
    for name, value in (("rps", rps), ("request time", request_seconds)):
        if not math.isfinite(value) or value <= 0:
            raise SizingError(f"{name} must be a number above 0")
    if isinstance(max_concurrent, bool) or max_concurrent < 1:
        raise SizingError("max concurrent requests must be a whole number of at least 1")
    utilization = normalise_utilization(target_utilization)
    concurrent = rps * request_seconds
    # Round away float noise (0.1 * 3 / 0.3) before the ceiling, so exact cases stay exact.
    replicas = math.ceil(round(concurrent / utilization / max_concurrent, 9))
    return ReplicaEstimate(max(replicas, 1), concurrent, utilization, max_concurrent)
