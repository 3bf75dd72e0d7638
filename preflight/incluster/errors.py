"""The in-cluster preflight's exceptions.

    PreflightError
    └── InClusterError       the run cannot start or its input is unusable
        └── ProbeOutputError  a probe pod's log holds no observation document

A pod that cannot start is not an exception: it becomes a finding. Only what stops the
whole run (no credentials, a namespace that is not ours, an unknown node pool) raises.
"""

from __future__ import annotations

from preflight.errors import PreflightError


class InClusterError(PreflightError):
    """The in-cluster run cannot go ahead; the message is one line and names why."""


class ProbeOutputError(InClusterError):
    """A probe pod's log does not hold the observation document the probe prints."""
