"""Azure Firewall Policy rule collection groups and NSG rules, built with azure-mgmt-network.

Objects are the SDK's own models, so the JSON is the REST shape Azure takes. The group is
first built as its REST mapping (`rest_group`, which Bicep, Terraform and az-cli render
from); `firewall_group` loads that mapping into the models. The SDK is imported only when a
model is built: importing it takes about 0.3 s, which no other format needs to pay.
HTTP/HTTPS to a name goes into application rules; everything else into network rules.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from reports.allowlist import safety
from reports.allowlist.errors import NoSourcesError, UnsupportedError
from reports.allowlist.options import RenderOptions
from reports.allowlist.ruleset import Allowlist, AllowRule, Target
from reports.allowlist.wildcards import Semantics, compact
from rules.model import Protocol

if TYPE_CHECKING:
    from azure.mgmt.network import models as m

APPLICATION_MAX_PORT = 64000  # Azure Firewall (and azurerm) application rule ports: 0-64000
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


def _application_fits(rule: AllowRule) -> bool:
    return rule.is_web and rule.port <= APPLICATION_MAX_PORT


def _application_rule(rule: AllowRule, sources: list[str]) -> dict[str, Any]:
    where = f"rule {rule.name}"
    rest: dict[str, Any] = {
        "ruleType": "ApplicationRule",
        "name": safety.name(rule.name, where),
        "description": rule.description(),
        "sourceAddresses": sources,
        "protocols": [
            {
                "protocolType": "Https" if rule.protocol is Protocol.HTTPS else "Http",
                "port": safety.port(rule.port, where),
            }
        ],
    }
    if rule.destination.kind is Target.FQDN_TAG:
        rest["fqdnTags"] = [safety.tag(rule.destination.value, where)]
    else:
        wildcard = rule.destination.kind is Target.WILDCARD
        rest["targetFqdns"] = [safety.host(rule.destination.value, where, wildcard=wildcard)]
    return rest


def _network_rule(rule: AllowRule, sources: list[str]) -> dict[str, Any]:
    where = f"rule {rule.name}"
    kind = rule.destination.kind
    rest: dict[str, Any] = {
        "ruleType": "NetworkRule",
        "name": safety.name(rule.name, where),
        "description": rule.description(),
        "ipProtocols": [rule.transport.upper()],
        "sourceAddresses": sources,
        "destinationPorts": [str(safety.port(rule.port, where))],
    }
    if kind is Target.SERVICE_TAG:
        rest["destinationAddresses"] = [safety.tag(rule.destination.value, where)]
    elif kind is Target.ADDRESS:
        rest["destinationAddresses"] = [safety.address(rule.destination.value, where)]
    else:
        rest["destinationFqdns"] = [safety.host(rule.destination.value, where)]
    return rest


def rest_group(allowlist: Allowlist, options: RenderOptions) -> tuple[dict[str, Any], list[str]]:
    """The rule collection group as the REST mapping (what `as_dict()` of the model gives).

    Bicep, Terraform and az-cli render from this mapping; `firewall_group` loads it into the
    SDK model. Tests check that the model serialises back to exactly this mapping.
    """
    sources = list(require_sources(allowlist, "azure-firewall"))
    application: list[dict[str, Any]] = []
    network: list[dict[str, Any]] = []
    warnings: list[str] = []
    for rule in compact(allowlist.rules, Semantics.ANY_DEPTH, _application_fits):
        kind = rule.destination.kind
        if _application_fits(rule):
            application.append(_application_rule(rule, sources))
            continue
        if rule.is_web:
            warnings.append(
                f"{' '.join(rule.requirement_ids)}: port {rule.port} is above what application "
                f"rules take ({APPLICATION_MAX_PORT}); a network rule is used where possible"
            )
        if kind is Target.WILDCARD or kind is Target.FQDN_TAG:
            warnings.append(
                f"{' '.join(rule.requirement_ids)}: {rule.destination.value} on "
                f"{rule.protocol.value} {rule.port} left out: network rules take no wildcards "
                "or FQDN tags"
            )
        else:
            if kind is Target.FQDN and DNS_PROXY_WARNING not in warnings:
                warnings.append(DNS_PROXY_WARNING)
            network.append(_network_rule(rule, sources))
    collections = [
        {
            "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
            "name": safety.name(f"{options.group_name}-{suffix}", "collection name"),
            "priority": priority,
            "action": {"type": "Allow"},
            "rules": rules,
        }
        for suffix, priority, rules in (
            ("network", options.network_priority, network),
            ("application", options.application_priority, application),
        )
        if rules
    ]
    if not collections:
        raise UnsupportedError("azure-firewall: no requirement needs an egress rule")
    group = {
        "name": safety.name(options.group_name, "group name"),
        "properties": {"priority": options.group_priority, "ruleCollections": collections},
    }
    return group, warnings


def rule_models(rules: list[Any]) -> list[Any]:
    """Firewall policy rules from their REST mappings, ready for a collection's constructor.

    The SDK's constructor finds each rule's class from `ruleType`, then passes every value
    through its serialiser, which hands JSON values back as they are: 0.8 s of the 1.2 s the
    ARM JSON of 10,000 rules took, and most of reading a policy of 5,000. Application and
    network rules are filled through the model's mapping interface instead (`_plain_rule`),
    lists copied so that no two models share one; anything else stays a mapping, for the
    collection's constructor to read as before (it keeps the models it is given). Tests check
    that the result equals, class, keys and order included, what the SDK builds itself.
    """
    from azure.mgmt.network import models

    out = []
    for rule in rules:
        model = _plain_rule(rule, models)
        out.append(rule if model is None else model)
    return out


def _plain_rule(rest: object, sdk: ModuleType) -> m.FirewallPolicyRule | None:
    """The model of an application or network rule whose only nested models are its protocols
    (`sdk`: the SDK's models module, imported once by the caller).

    None for anything else: another rule type, headers to insert, protocols that are not a
    list of objects, or no mapping at all.
    """
    if not isinstance(rest, dict):
        return None
    kind = rest.get("ruleType")
    model: m.FirewallPolicyRule
    if kind == "NetworkRule":
        model = sdk.NetworkRule()
    elif kind == "ApplicationRule" and rest.get("httpHeadersToInsert") is None:
        model = sdk.ApplicationRule()
    else:
        return None
    values = {k: list(v) if isinstance(v, list) else v for k, v in rest.items()}
    protocols = rest.get("protocols")
    if kind == "ApplicationRule" and protocols is not None:
        if not isinstance(protocols, list) or not all(isinstance(p, dict) for p in protocols):
            return None
        values["protocols"] = [
            _filled(sdk.FirewallPolicyRuleApplicationProtocol(), p) for p in protocols
        ]
    return _filled(model, values)


_Model = TypeVar("_Model", bound=MutableMapping[str, Any])


def _filled(model: _Model, values: dict[str, Any]) -> _Model:
    """`model` holding exactly `values`, in their order (replacing what its constructor set)."""
    model.clear()
    model.update(values)
    return model


def group_model(entry: dict[str, Any]) -> m.FirewallPolicyRuleCollectionGroup:
    """A rule collection group's SDK model, the rules of its filter collections built by
    `rule_models`: the same models as the group's constructor builds from `entry`, in a
    fifth of the time for 5,000 rules. What is not a filter collection with a list of rules
    is left to the constructor (our groups, and any policy document the audit reads)."""
    from azure.mgmt.network import models as m

    properties = entry.get("properties")
    if not isinstance(properties, dict) or not isinstance(properties.get("ruleCollections"), list):
        return m.FirewallPolicyRuleCollectionGroup(entry)
    built = [
        {**c, "rules": rule_models(c["rules"])}
        if isinstance(c, dict)
        and c.get("ruleCollectionType") == "FirewallPolicyFilterRuleCollection"
        and isinstance(c.get("rules"), list)
        else c
        for c in properties["ruleCollections"]
    ]
    return m.FirewallPolicyRuleCollectionGroup(
        {**entry, "properties": {**properties, "ruleCollections": built}}
    )


def firewall_group(
    allowlist: Allowlist, options: RenderOptions
) -> tuple[m.FirewallPolicyRuleCollectionGroup, list[str]]:
    """The rule collection group as the SDK model, loaded from `rest_group`'s mapping."""
    rest, warnings = rest_group(allowlist, options)
    return group_model(rest), warnings


def network_security_group(
    allowlist: Allowlist, options: RenderOptions
) -> tuple[m.NetworkSecurityGroup, list[str]]:
    """Outbound NSG rules for what an NSG can express: service tags and addresses, no names."""
    from azure.mgmt.network import models as m

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
