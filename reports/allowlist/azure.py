"""Azure Firewall Policy rule collection groups and NSG rules, built with azure-mgmt-network.

Objects are the SDK's own models (mapping-based from azure-mgmt-network 31.0: built from
keyword arguments, serialised with `as_dict()`), so the JSON is the REST shape Azure takes.
HTTP/HTTPS to a name goes into application rules; everything else into network rules.
"""

from __future__ import annotations

from typing import Any

from azure.mgmt.network import models as m

from reports.allowlist import safety
from reports.allowlist.errors import NoSourcesError, UnsupportedError
from reports.allowlist.options import RenderOptions
from reports.allowlist.ruleset import Allowlist, AllowRule, Target
from reports.allowlist.wildcards import Semantics, compact
from rules.model import Protocol

NSG_MAX_RULES = 1000
NSG_MAX_PRIORITY = 4096
DNS_PROXY_WARNING = (
    "network rules with destination FQDNs work only with the firewall's DNS proxy enabled "
    "(the firewall re-resolves them every 15 s)"
)


def require_sources(allowlist: Allowlist, fmt: str) -> tuple[str, ...]:
    if not allowlist.source_cidrs:
        raise NoSourcesError(
            f"{fmt}: no source CIDRs; set network.source_cidrs in the config or pass "
            "--source-cidr (rules from any source would allow more than needed)"
        )
    return tuple(safety.cidr(c, "source CIDR") for c in allowlist.source_cidrs)


def _application_rule(rule: AllowRule, sources: list[str]) -> m.ApplicationRule:
    protocol = m.FirewallPolicyRuleApplicationProtocol(
        protocol_type="Https" if rule.protocol is Protocol.HTTPS else "Http",
        port=safety.port(rule.port, rule.name),
    )
    where = f"rule {rule.name}"
    common: dict[str, Any] = {
        "name": safety.name(rule.name, where),
        "description": rule.description(),
        "source_addresses": sources,
        "protocols": [protocol],
    }
    if rule.destination.kind is Target.FQDN_TAG:
        return m.ApplicationRule(fqdn_tags=[safety.tag(rule.destination.value, where)], **common)
    wildcard = rule.destination.kind is Target.WILDCARD
    fqdn = safety.host(rule.destination.value, where, wildcard=wildcard)
    return m.ApplicationRule(target_fqdns=[fqdn], **common)


def _network_rule(rule: AllowRule, sources: list[str]) -> m.NetworkRule:
    where = f"rule {rule.name}"
    destination: dict[str, list[str]]
    kind = rule.destination.kind
    if kind is Target.SERVICE_TAG:
        destination = {"destination_addresses": [safety.tag(rule.destination.value, where)]}
    elif kind is Target.ADDRESS:
        destination = {"destination_addresses": [safety.address(rule.destination.value, where)]}
    else:
        destination = {"destination_fqdns": [safety.host(rule.destination.value, where)]}
    return m.NetworkRule(
        name=safety.name(rule.name, where),
        description=rule.description(),
        ip_protocols=[rule.transport.upper()],
        source_addresses=sources,
        destination_ports=[str(safety.port(rule.port, where))],
        **destination,
    )


def firewall_group(
    allowlist: Allowlist, options: RenderOptions
) -> tuple[m.FirewallPolicyRuleCollectionGroup, list[str]]:
    """The rule collection group (network and application collections) and its warnings."""
    sources = list(require_sources(allowlist, "azure-firewall"))
    application: list[m.FirewallPolicyRule] = []
    network: list[m.FirewallPolicyRule] = []
    warnings: list[str] = []
    for rule in compact(allowlist.rules, Semantics.ANY_DEPTH):
        kind = rule.destination.kind
        if rule.is_web:
            application.append(_application_rule(rule, sources))
        elif kind is Target.WILDCARD or kind is Target.FQDN_TAG:
            warnings.append(
                f"{' '.join(rule.requirement_ids)}: {rule.destination.value} on "
                f"{rule.protocol.value} {rule.port} left out: network rules take no wildcards "
                "or FQDN tags"
            )
        else:
            if kind is Target.FQDN and DNS_PROXY_WARNING not in warnings:
                warnings.append(DNS_PROXY_WARNING)
            network.append(_network_rule(rule, sources))
    collections: list[m.FirewallPolicyRuleCollection] = []
    for suffix, priority, rules in (
        ("network", options.network_priority, network),
        ("application", options.application_priority, application),
    ):
        if rules:
            collections.append(
                m.FirewallPolicyFilterRuleCollection(
                    name=safety.name(f"{options.group_name}-{suffix}", "collection name"),
                    priority=priority,
                    action=m.FirewallPolicyFilterRuleCollectionAction(type="Allow"),
                    rules=rules,
                )
            )
    if not collections:
        raise UnsupportedError("azure-firewall: no requirement needs an egress rule")
    group = m.FirewallPolicyRuleCollectionGroup(
        name=safety.name(options.group_name, "group name"),
        properties=m.FirewallPolicyRuleCollectionGroupProperties(
            priority=options.group_priority,
            rule_collections=collections,
        ),
    )
    return group, warnings


def network_security_group(
    allowlist: Allowlist, options: RenderOptions
) -> tuple[m.NetworkSecurityGroup, list[str]]:
    """Outbound NSG rules for what an NSG can express: service tags and addresses, no names."""
    sources = list(require_sources(allowlist, "nsg"))
    rules: list[m.SecurityRule] = []
    names: list[str] = []
    priority = options.nsg_priority
    for rule in allowlist.rules:
        kind = rule.destination.kind
        where = f"rule {rule.name}"
        if kind is Target.SERVICE_TAG:
            destination = safety.tag(rule.destination.value, where)
        elif kind is Target.ADDRESS:
            destination = safety.address(rule.destination.value, where)
        else:
            names.append(rule.destination.value)
            continue
        if priority > NSG_MAX_PRIORITY or len(rules) >= NSG_MAX_RULES:
            raise UnsupportedError(
                f"nsg: more rules than an NSG holds (at most {NSG_MAX_RULES}, priorities up to "
                f"{NSG_MAX_PRIORITY}); start lower with --nsg-priority or use azure-firewall"
            )
        properties = m.SecurityRulePropertiesFormat(
            description=rule.description(),
            protocol="Udp" if rule.transport == "udp" else "Tcp",
            source_address_prefixes=sources,
            source_port_range="*",
            destination_address_prefix=destination,
            destination_port_range=str(safety.port(rule.port, where)),
            access="Allow",
            direction="Outbound",
            priority=priority,
        )
        rules.append(m.SecurityRule(name=safety.name(rule.name, where), properties=properties))
        priority += 1
    warnings = []
    if names:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        warnings.append(
            f"NSGs cannot filter by FQDN: {len(names)} destinations need Azure Firewall or a "
            f"proxy ({shown})"
        )
    if not rules:
        raise UnsupportedError(
            "nsg: nothing an NSG can express (every destination is a name); use azure-firewall"
        )
    group = m.NetworkSecurityGroupPropertiesFormat(security_rules=rules)
    return m.NetworkSecurityGroup(properties=group), warnings
