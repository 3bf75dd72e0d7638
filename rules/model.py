"""The vocabulary every layer shares: phases, requirements, checks, observations, findings.

Collect, then judge: an `Observation` is what a probe saw (facts, no verdict); a `Finding`
is what the rules concluded from it. Both refer to a `Check` by its stable id, which is
the same in every output format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    """The documented time order of an Azure ML v1 AKS deployment; each needs the one before."""

    ROUTER_INSTALL = "router-install"
    ROUTER_STARTUP = "router-startup"
    ROUTER_RUNNING = "router-running"
    MODEL_DEPLOY = "model-deploy"
    SERVING = "serving"

    @property
    def rank(self) -> int:
        return PHASE_ORDER.index(self)


PHASE_ORDER: tuple[Phase, ...] = tuple(Phase)

PHASE_TITLES: Mapping[Phase, str] = {
    Phase.ROUTER_INSTALL: "Router install (cluster create or attach)",
    Phase.ROUTER_STARTUP: "Router start-up",
    Phase.ROUTER_RUNNING: "Router running",
    Phase.MODEL_DEPLOY: "Model deployment",
    Phase.SERVING: "Serving",
}

PHASE_SYMPTOMS: Mapping[Phase, str] = {
    Phase.ROUTER_INSTALL: "cluster create or attach hangs, then times out",
    Phase.ROUTER_STARTUP: "the router pods start but never become ready",
    Phase.ROUTER_RUNNING: "the router runs but cannot load its configuration or route",
    Phase.MODEL_DEPLOY: "the service stays Transitioning, then Failed",
    Phase.SERVING: "the service is Healthy but scoring requests fail",
}


class Protocol(StrEnum):
    """What a requirement needs on the wire."""

    HTTPS = "https"
    HTTP = "http"
    TCP = "tcp"
    UDP = "udp"


class CheckKind(StrEnum):
    """One probe kind per value; `phase` nodes are the plan's phase gates, never probed."""

    DNS = "dns"
    TCP = "tcp"
    TLS = "tls"
    HTTP = "http"
    KUBERNETES = "k8s"
    PEER = "peer"
    CLUSTER = "cluster"  # a rule over the cluster's own objects (rules/cluster.py)
    PHASE = "phase"


@dataclass(slots=True, unsafe_hash=True)
class Requirement:
    """One connectivity need of the deployment, rendered for a concrete config.

    Not frozen, for the reason `Check` gives; immutable by contract and hashable.

    `host` may be a wildcard (`*.data.mcr.microsoft.com`), a service tag or an FQDN tag;
    such requirements go into allowlists but cannot be probed directly. A host that holds
    `<...>` is not documented for the chosen cloud (its `note` says which name is unknown).
    """

    id: str
    catalogue: str
    host: str
    port: int | None
    protocol: Protocol
    phases: tuple[Phase, ...]  # in phase order, never empty
    purpose: str
    source: str
    breaks: str = ""
    resolve_only: bool = False
    service_tag: str | None = None
    fqdn_tag: str | None = None
    private_link_zone: str | None = None
    private_endpoint: bool = False
    # "warn": a failure degrades the deployment (telemetry lost) but does not break it.
    severity: str = "fail"
    kind: CheckKind | None = None  # k8s / peer requirements name no host: target is `host`
    # The config field that, when set, would turn a host pattern into a name a probe can test.
    missing_field: str | None = None
    note: str = ""

    @property
    def phase(self) -> Phase:
        """The first phase that needs it (`phases` is kept in phase order)."""
        return self.phases[0]

    @property
    def is_wildcard(self) -> bool:
        return self.host.startswith("*.")

    @property
    def probeable(self) -> bool:
        """Whether a probe can test it: a concrete name, not a wildcard or a service tag."""
        return (
            self.kind is None
            and "*" not in self.host
            and "<" not in self.host
            and self.service_tag is None
            and self.fqdn_tag is None
        )


@dataclass(slots=True, unsafe_hash=True)
class Check:
    """A node of the plan: one probe of one target, with a stable id.

    Not frozen, but immutable by contract (`dataclasses.replace` makes a changed copy;
    plans share checks) and hashable by value like a frozen one: a frozen dataclass sets
    each field through `object.__setattr__`, which made building the 30,000 checks of a
    large plan three times slower.

    Ids: `dns:<host>`, `tcp:<host>:<port>`, `tls:<host>:<port>`, `http:<host>:<port>`,
    `k8s:<what>`, `peer:<what>`, and `phase:<phase-id>` for the phase gates.
    """

    id: str
    kind: CheckKind
    phase: Phase
    target: str
    port: int | None = None
    phases: tuple[Phase, ...] = ()
    requirement_ids: tuple[str, ...] = ()
    purpose: str = ""
    source: str = ""
    breaks: str = ""
    # DNS only: True when a private endpoint is expected (answer must be private),
    # False when the answer must be public, None when either is acceptable.
    expect_private: bool | None = None
    private_link_zone: str | None = None
    severity: str = "fail"
    # Why a check cannot be run from here (a wildcard, an unknown name); None when it can.
    unprobeable_reason: str | None = None


class ProbeStatus(StrEnum):
    """What a probe saw, chosen from exception types, never from error text."""

    OK = "ok"
    # DNS
    NXDOMAIN = "nxdomain"
    NO_ANSWER = "no-answer"
    SERVFAIL = "servfail"
    DNS_TIMEOUT = "dns-timeout"
    # TCP
    REFUSED = "refused"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    # TLS
    UNTRUSTED = "untrusted"
    HOSTNAME_MISMATCH = "hostname-mismatch"
    TLS_ERROR = "tls-error"
    # HTTP
    PROXY_ERROR = "proxy-error"
    STATUS = "status"
    # Kubernetes API
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    # The probe could not run at all (no credentials, a wildcard name, not in a cluster).
    SKIPPED = "skipped"
    # Anything not foreseen; the detail says what.
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Observation:
    """Facts a probe collected for one check. `evidence` is JSON-serialisable."""

    check_id: str
    status: ProbeStatus
    duration_ms: float
    detail: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)


class Status(StrEnum):
    """A finding's verdict."""

    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    WARN = "warn"
    FAIL = "fail"
    BLOCKED = "blocked"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Finding:
    """The rules' verdict on one check, with what to change when it is not a pass."""

    check: Check
    status: Status
    reason: str
    observation: Observation | None = None
    blocked_by: str | None = None
    remediation: str = ""


@dataclass(frozen=True, slots=True)
class PhaseVerdict:
    phase: Phase
    status: Status
    failed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Everything a report needs: per-check findings, per-phase verdicts, the first break."""

    findings: tuple[Finding, ...]
    phases: tuple[PhaseVerdict, ...]
    verdict: Status
    first_failing_phase: Phase | None
    duration_s: float = 0.0
