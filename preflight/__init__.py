"""preflight: run a plan's checks against the network and report what was seen.

Probes collect facts and never judge (the rules do). One probe kind per module:
`dns`, `tcp`, `tls`, `http`, `kube`; `runner.run_plan` executes a plan concurrently in
dependency order; `progress.run_plan_with_progress` adds a live display on a terminal.

Evidence keys (a contract the evaluation and the reports rely on):

    dns:<host>   server         the nameserver that answered, "ip" or "ip:port" (None on
                                a timeout)
                 addresses      A then AAAA answers
                 address_classes  address → private | public | loopback | link-local |
                                reserved (`rules.names.classify_address`)
                 cname_chain    query name, then each CNAME target; [] without CNAME
                 privatelink    a `.privatelink.` name is in the chain
                 nameservers    the servers asked; resolver: given | system | injected
                 record_errors  record type → status, for A or AAAA that failed
    tcp:<h>:<p>  address        the address that answered, or the last one tried
                 addresses_tried, connect_ms, errors (address → status)
    tls:<h>:<p>  address, issuer (RFC 4514, also when verification failed), subject, sans,
                 not_after (ISO 8601), tls_version, verify_message (on failure)
    http:<h>:<p> status_code, server_header, http_version, address (None through a
                 proxy), via_proxy (proxy URL or None), resolved_by: dns | proxy
    k8s:version  server (API server URL), git_version, platform
    k8s:discovery-rbac  server, namespace, allowed ("verb resource" → bool);
                 http_status when the API refused the request

Given nameservers are asked by the run's own stub client (`_stub`: A and AAAA at once on
shared UDP sockets, TCP on truncation); the system's or an injected resolver through
dnspython. Statuses come from `rules.model.ProbeStatus`, chosen by exception type and
errno (for DNS, by reply code as dnspython's `Resolver` decides).
TCP, TLS and HTTP connect only to the addresses the host's DNS check found, never
through another resolver; for one endpoint they share one connection.

Exceptions:

    PreflightError
    └── OptionsError      a bad option (nameserver, CA bundle, proxy URL, kubeconfig, ...)
"""

from preflight.errors import OptionsError, PreflightError
from preflight.options import ProbeOptions
from preflight.runner import EventKind, RunEvent, RunResult, run_plan

__all__ = [
    "EventKind",
    "OptionsError",
    "PreflightError",
    "ProbeOptions",
    "RunEvent",
    "RunResult",
    "run_plan",
]
