"""What to change, per failure status: the second half of every failed finding.

Kept apart from the verdict logic so the wording can grow without touching the judging.
"""

from __future__ import annotations

from collections.abc import Iterable

from rules.model import Check, CheckKind, Observation, ProbeStatus, Requirement

_AZURE_DNS = "168.63.129.16"


def remediation_for(check: Check, obs: Observation) -> str:
    """The cause, in words a network administrator acts on."""
    ev = obs.evidence
    host = check.target
    port = check.port
    address = ev.get("address") or (ev.get("addresses_tried") or [None])[-1]
    at = f" ({address})" if address else ""
    server = ev.get("server") or "the DNS server"
    match obs.status:
        case ProbeStatus.NXDOMAIN:
            return (
                f"{server} says {host} does not exist: the custom DNS does not forward this "
                f"zone; forward it to Azure DNS ({_AZURE_DNS}) or create the record."
            )
        case ProbeStatus.NO_ANSWER:
            return f"{server} has no A/AAAA record for {host}; check the zone's records."
        case ProbeStatus.SERVFAIL:
            return (
                f"{server} failed to resolve {host} (SERVFAIL): its forwarder is unreachable "
                "or DNSSEC validation fails; fix the DNS server's upstream."
            )
        case ProbeStatus.DNS_TIMEOUT:
            return (
                f"{server} does not answer: allow UDP and TCP 53 from the node subnet to the "
                "DNS server, or fix network.nameservers."
            )
        case ProbeStatus.TIMEOUT:
            return (
                f"connections to {host}:{port}{at} are silently dropped: a firewall filters them."
            )
        case ProbeStatus.REFUSED:
            return (
                f"connections to {host}:{port}{at} are rejected: a firewall resets them "
                "or nothing listens there."
            )
        case ProbeStatus.UNREACHABLE:
            return (
                f"no route to {host}{at}: check the route table (UDR) of the node subnet "
                "and the firewall's next hop."
            )
        case ProbeStatus.UNTRUSTED:
            issuer = ev.get("issuer")
            by = f" issued by {issuer}" if issuer else ""
            return (
                f"the certificate of {host}{by} is not trusted: a TLS-inspecting firewall "
                "re-signs it? Exempt this host from TLS inspection (image pulls and the API "
                "server tunnel need the real certificate) or trust the inspection CA."
            )
        case ProbeStatus.HOSTNAME_MISMATCH:
            return (
                f"the certificate served for {host} is for another name: the traffic is "
                "intercepted or reaches the wrong server (check DNS and the firewall's DNAT)."
            )
        case ProbeStatus.TLS_ERROR:
            return f"the TLS handshake with {host} fails: a middlebox breaks TLS on port {port}."
        case ProbeStatus.PROXY_ERROR:
            return (
                f"the proxy refused to reach {host}: allow it in the proxy, or add it to "
                "NO_PROXY when it must not be proxied."
            )
        case ProbeStatus.UNAUTHORIZED:
            return "the API server rejects the credentials: refresh the kubeconfig."
        case ProbeStatus.FORBIDDEN:
            return (
                "the credentials lack the permissions the router needs (list and watch pods, "
                "services and endpoints): grant them with a Role and RoleBinding."
            )
    if check.kind is CheckKind.HTTP:
        return f"{host} answered in an unexpected way: {obs.detail}"
    return obs.detail or "an unexpected error; see the evidence"


def allow_hint(requirements: Iterable[Requirement], check: Check) -> str:
    """`allow TCP 443 to mcr.microsoft.com and *.data.mcr.microsoft.com` — the rule to open."""
    if check.kind in (CheckKind.KUBERNETES, CheckKind.PEER) or check.port is None:
        return ""
    companions = sorted(
        r.host for r in requirements if r.is_wildcard and r.host[2:].endswith("." + check.target)
    )
    names = " and ".join([check.target, *companions])
    return f"Allow TCP {check.port} to {names} (aksflight allowlist writes the rules)."
