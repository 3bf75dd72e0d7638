"""Reading an Azure Firewall policy into azure-mgmt-network models, then into match rules.

Accepted documents: one rule collection group (REST or `az` output), a list of them
(`{"value": [...]}` or a JSON array), an ARM template export (`resources`, with rule
collection groups and/or classic firewalls), and a classic `AzureFirewall` with its
application and network rule collections. The SDK models pick each collection's and rule's
type from its discriminator; values are then type-checked here, because the models accept
anything. The result is a flat list of `PolicyRule`s in the order Azure Firewall applies them:
every network rule before any application rule; within each, rule collection groups by
priority, then collections by priority, then rules in order (all rules are terminating).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from azure.mgmt.network import models as m

from reports.allowlist.azure import group_model
from reports.audit.errors import PolicyFormatError
from reports.audit.matching import AddressSet, Range, parse_address, parse_ports

_GROUP_TYPE = "microsoft.network/firewallpolicies/rulecollectiongroups"
_POLICY_TYPE = "microsoft.network/firewallpolicies"
_FIREWALL_TYPE = "microsoft.network/azurefirewalls"
_TEMPLATE_NAME = re.compile(r"/([^/'\]]+)'\)?\]$")


class Layer(StrEnum):
    NETWORK = "network"
    APPLICATION = "application"


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One rule, compiled for matching; `ref` is `group/collection/rule`."""

    ref: str
    layer: Layer
    action: str  # "Allow" or "Deny"
    order: tuple[int, ...]
    sources: AddressSet
    uses_ip_groups: bool = False
    # network rules
    ip_protocols: frozenset[str] = frozenset()
    ports: tuple[tuple[int, int], ...] = ()
    destinations: AddressSet = field(default_factory=AddressSet)
    destination_tags: frozenset[str] = frozenset()
    destination_fqdns: frozenset[str] = frozenset()
    # application rules
    web_protocols: frozenset[tuple[str, int]] = frozenset()
    targets: tuple[str, ...] = ()
    fqdn_tags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Policy:
    rules: tuple[PolicyRule, ...]
    groups: tuple[str, ...]
    models: tuple[Any, ...]
    skipped: tuple[str, ...] = ()  # what was read but not evaluated (NAT, unknown entries)


def _display_name(value: object, fallback: str) -> str:
    """A resource name; ARM template expressions keep their last literal segment."""
    if not isinstance(value, str) or not value:
        return fallback
    if value.startswith("["):
        found = _TEMPLATE_NAME.search(value)
        return found.group(1) if found else fallback
    return value.rsplit("/", 1)[-1]


def _strings(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyFormatError(f"{where}: expected a list of strings")
    return list(value)


def _priority(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyFormatError(f"{where}: priority must be a whole number, got {value!r}")
    return value


def _action(collection: Mapping[str, Any], where: str) -> str:
    action = collection.get("action")
    kind = action.get("type") if isinstance(action, Mapping) else None
    if not isinstance(kind, str) or kind.lower() not in ("allow", "deny"):
        raise PolicyFormatError(f"{where}: action must be Allow or Deny, got {kind!r}")
    return "Allow" if kind.lower() == "allow" else "Deny"


def _sources(rule: Mapping[str, Any], where: str) -> tuple[AddressSet, bool]:
    ranges: list[Range] = []
    for value in _strings(rule.get("sourceAddresses"), f"{where}.sourceAddresses"):
        parsed = parse_address(value)
        if parsed is not None:
            ranges.extend(parsed.ranges)
    groups = bool(_strings(rule.get("sourceIpGroups"), f"{where}.sourceIpGroups"))
    return AddressSet.of(ranges), groups


def _network(rule: Mapping[str, Any], protocols_key: str, where: str, **common: Any) -> PolicyRule:
    ranges: list[Range] = []
    tags = set()
    for value in _strings(rule.get("destinationAddresses"), f"{where}.destinationAddresses"):
        parsed = parse_address(value)
        if parsed is None:
            tags.add(value.strip().lower())
        else:
            ranges.extend(parsed.ranges)
    ports = parse_ports(_strings(rule.get("destinationPorts"), f"{where}.destinationPorts"))
    if ports is None:
        raise PolicyFormatError(f"{where}.destinationPorts: not ports")
    protocols = _strings(rule.get(protocols_key), f"{where}.{protocols_key}")
    fqdns = _strings(rule.get("destinationFqdns"), f"{where}.destinationFqdns")
    return PolicyRule(
        layer=Layer.NETWORK,
        ip_protocols=frozenset(p.upper() for p in protocols),
        ports=ports,
        destinations=AddressSet.of(ranges),
        destination_tags=frozenset(tags),
        destination_fqdns=frozenset(f.strip().lower() for f in fqdns),
        **common,
    )


def _application(rule: Mapping[str, Any], where: str, **common: Any) -> PolicyRule:
    protocols = rule.get("protocols") or []
    if not isinstance(protocols, list):
        raise PolicyFormatError(f"{where}.protocols: expected a list")
    web = set()
    for index, protocol in enumerate(protocols):
        kind = protocol.get("protocolType") if isinstance(protocol, Mapping) else None
        port = protocol.get("port") if isinstance(protocol, Mapping) else None
        if not isinstance(kind, str) or isinstance(port, bool) or not isinstance(port, int):
            raise PolicyFormatError(f"{where}.protocols[{index}]: needs protocolType and port")
        web.add((kind.lower(), port))
    targets = _strings(rule.get("targetFqdns"), f"{where}.targetFqdns")
    tags = _strings(rule.get("fqdnTags"), f"{where}.fqdnTags")
    return PolicyRule(
        layer=Layer.APPLICATION,
        web_protocols=frozenset(web),
        targets=tuple(t.strip().lower() for t in targets),
        fqdn_tags=frozenset(t.strip().lower() for t in tags),
        **common,
    )


def _compile_rule(
    rule: Any, ref: str, action: str, order: tuple[int, ...], where: str, *, classic: str | None
) -> PolicyRule | None:
    sources, groups = _sources(rule, where)
    common = {"ref": ref, "action": action, "sources": sources, "uses_ip_groups": groups}
    if classic == "network" or isinstance(rule, m.NetworkRule):
        key = "protocols" if classic else "ipProtocols"
        return _network(rule, key, where, order=(0, *order), **common)
    if classic == "application" or isinstance(rule, m.ApplicationRule):
        return _application(rule, where, order=(1, *order), **common)
    if isinstance(rule, m.NatRule):
        return None
    raise PolicyFormatError(f"{where}: unknown ruleType {rule.get('ruleType')!r}")


def _group_rules(
    group: m.FirewallPolicyRuleCollectionGroup, index: int, name: str, where: str
) -> Iterator[PolicyRule | str]:
    properties = group.get("properties") or {}
    priority = _priority(properties.get("priority"), f"{where}.properties.priority")
    collections = properties.get("ruleCollections") or []
    if not isinstance(collections, list):
        raise PolicyFormatError(f"{where}.properties.ruleCollections: expected a list")
    for c_index, collection in enumerate(collections):
        c_where = f"{where}.properties.ruleCollections[{c_index}]"
        c_name = _display_name(collection.get("name"), f"collection{c_index}")
        if isinstance(collection, m.FirewallPolicyNatRuleCollection):
            yield f"{name}/{c_name}: a DNAT collection (inbound), not evaluated"
            continue
        if not isinstance(collection, m.FirewallPolicyFilterRuleCollection):
            raise PolicyFormatError(f"{c_where}: unknown ruleCollectionType")
        action = _action(collection, c_where)
        c_priority = _priority(collection.get("priority"), f"{c_where}.priority")
        rules = collection.get("rules") or []
        if not isinstance(rules, list):
            raise PolicyFormatError(f"{c_where}.rules: expected a list")
        for r_index, rule in enumerate(rules):
            ref = f"{name}/{c_name}/{_display_name(rule.get('name'), f'rule{r_index}')}"
            order = (priority, index, c_priority, c_index, r_index)
            compiled = _compile_rule(
                rule, ref, action, order, f"{c_where}.rules[{r_index}]", classic=None
            )
            if compiled is not None:
                yield compiled


def _firewall_rules(
    firewall: m.AzureFirewall, index: int, name: str, where: str
) -> Iterator[PolicyRule | str]:
    properties = firewall.get("properties") or {}
    for key, classic in (
        ("networkRuleCollections", "network"),
        ("applicationRuleCollections", "application"),
    ):
        collections = properties.get(key) or []
        if not isinstance(collections, list):
            raise PolicyFormatError(f"{where}.properties.{key}: expected a list")
        for c_index, collection in enumerate(collections):
            c_where = f"{where}.properties.{key}[{c_index}]"
            c_name = _display_name(collection.get("name"), f"collection{c_index}")
            body = collection.get("properties") or {}
            action = _action(body, c_where)
            c_priority = _priority(body.get("priority"), f"{c_where}.properties.priority")
            rules = body.get("rules") or []
            if not isinstance(rules, list):
                raise PolicyFormatError(f"{c_where}.properties.rules: expected a list")
            for r_index, rule in enumerate(rules):
                ref = f"{name}/{c_name}/{_display_name(rule.get('name'), f'rule{r_index}')}"
                order = (0, index, c_priority, c_index, r_index)
                r_where = f"{c_where}.properties.rules[{r_index}]"
                compiled = _compile_rule(rule, ref, action, order, r_where, classic=classic)
                if compiled is not None:
                    yield compiled


def _wrap_group(entry: dict[str, Any]) -> dict[str, Any]:
    """`az` prints groups flattened (no `properties`); the models want the REST shape."""
    if "properties" in entry:
        return entry
    properties = {k: entry[k] for k in ("priority", "ruleCollections") if k in entry}
    return {"name": entry.get("name"), "properties": properties}


def _wrap_firewall(entry: dict[str, Any]) -> dict[str, Any]:
    body = entry.get("properties", entry)
    if not isinstance(body, dict):
        raise PolicyFormatError("firewall properties: expected an object")
    wrapped = {}
    for key in ("applicationRuleCollections", "networkRuleCollections"):
        collections = body.get(key) or []
        if not isinstance(collections, list):
            raise PolicyFormatError(f"{key}: expected a list")
        wrapped[key] = [
            c
            if not isinstance(c, dict) or "properties" in c
            else {"name": c.get("name"), "properties": {k: v for k, v in c.items() if k != "name"}}
            for c in collections
        ]
    return {"name": entry.get("name"), "properties": wrapped}


def _entries(document: object, where: str) -> Iterator[tuple[str, dict[str, Any], str]]:
    """("group" | "firewall", the entry, where it is) for everything the document holds."""
    if isinstance(document, list):
        for index, item in enumerate(document):
            yield from _entries(item, f"{where}[{index}]")
        return
    if not isinstance(document, dict):
        raise PolicyFormatError(f"{where}: expected an object or a list")
    kind = str(document.get("type", "")).lower()
    properties = document.get("properties")
    body: dict[str, Any] = properties if isinstance(properties, dict) else document
    if isinstance(document.get("value"), list):
        yield from _entries(document["value"], f"{where}.value")
    elif isinstance(document.get("resources"), list) and kind in ("", _POLICY_TYPE):
        for index, item in enumerate(document["resources"]):
            if not isinstance(item, dict):
                raise PolicyFormatError(f"{where}.resources[{index}]: expected an object")
            item_kind = str(item.get("type", "")).lower()
            if item_kind in (_GROUP_TYPE, _FIREWALL_TYPE, _POLICY_TYPE):
                yield from _entries(item, f"{where}.resources[{index}]")
    elif kind == _GROUP_TYPE or "ruleCollections" in body:
        yield "group", _wrap_group(document), where
    elif kind == _FIREWALL_TYPE or any(
        k in body for k in ("applicationRuleCollections", "networkRuleCollections")
    ):
        yield "firewall", _wrap_firewall(document), where
    elif kind == _POLICY_TYPE:
        return  # the policy resource itself holds no rules; its groups are resources
    else:
        raise PolicyFormatError(
            f"{where}: not a rule collection group, firewall policy export or Azure Firewall"
        )


def load_policy(document: object) -> Policy:
    """Every rule of the document, in evaluation order; raises `PolicyFormatError`."""
    rules: list[PolicyRule] = []
    groups: list[str] = []
    models: list[Any] = []
    skipped: list[str] = []
    for index, (kind, entry, where) in enumerate(_entries(document, "$")):
        name = _display_name(entry.get("name"), f"{kind}{index}")
        if kind == "group":
            model: Any = group_model(entry)
            produced = _group_rules(model, index, name, where)
        else:
            model = m.AzureFirewall(entry)
            produced = _firewall_rules(model, index, name, where)
        for item in produced:
            if isinstance(item, str):
                skipped.append(item)
            else:
                rules.append(item)
        groups.append(name)
        models.append(model)
    if not groups:
        raise PolicyFormatError("$: the document holds no rule collection group or firewall")
    rules.sort(key=lambda r: r.order)
    return Policy(tuple(rules), tuple(groups), tuple(models), tuple(skipped))
