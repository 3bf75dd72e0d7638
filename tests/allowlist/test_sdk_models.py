"""Rule models filled through their mapping interface are the models the SDK builds itself.

`azure.rule_models` skips the SDK constructor's per-value conversion for application and
network rules (the ARM JSON and the audit's policy loading both use it). These tests hold
it to the SDK's own result: the same classes at every level, the same keys in the same
order, the same values, for our rules and for the odd shapes a policy document may hold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from azure.mgmt.network import models as m

from reports.allowlist import Allowlist, RenderOptions, build_allowlist
from reports.allowlist.azure import (
    firewall_group,
    network_security_group,
    rest_group,
    rule_models,
)
from reports.allowlist.render import render_allowlist
from reports.audit import PolicyFormatError, load_policy
from reports.audit import policy as policy_module
from rules.catalogue import requirements_for
from tests.allowlist.support import config_with, full_allowlist

AUDIT_FIXTURES = Path(__file__).resolve().parent.parent / "audit" / "fixtures"


def shape(value: Any) -> Any:
    """Class, keys in order and values, all the way down (model equality ignores the class)."""
    if isinstance(value, Mapping):  # a model or a plain dict
        return (type(value).__name__, [(k, shape(v)) for k, v in value.items()])
    if isinstance(value, list):
        return [shape(v) for v in value]
    return value


def _collection(rules: list[Any]) -> dict[str, Any]:
    return {
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
        "name": "c",
        "priority": 100,
        "action": {"type": "Allow"},
        "rules": rules,
    }


ODD_RULES: list[dict[str, Any]] = [
    {
        "ruleType": "ApplicationRule",
        "name": "plain",
        "sourceAddresses": ["10.0.0.0/16"],
        "protocols": [{"protocolType": "Https", "port": 443}],
        "targetFqdns": ["a.example.com"],
    },
    {
        "name": "type-last",
        "extra": {"nested": [1, 2]},
        "protocols": [{"port": 80, "protocolType": "Http", "unknown": True}],
        "ruleType": "ApplicationRule",
    },
    {"ruleType": "ApplicationRule", "name": "no-protocols", "protocols": None},
    {"ruleType": "ApplicationRule", "name": "protocol-items", "protocols": ["Https"]},
    {
        "ruleType": "ApplicationRule",
        "name": "headers",
        "httpHeadersToInsert": [{"headerName": "x-a", "headerValue": "1"}],
    },
    {"ruleType": "NetworkRule", "name": None, "ipProtocols": ["TCP"], "destinationPorts": ["1"]},
    {"ruleType": "NetworkRule", "name": "with-protocols", "protocols": [{"port": 1}]},
    {"ruleType": "NatRule", "name": "nat", "translatedAddress": "10.0.0.1"},
    {"ruleType": "applicationrule", "name": "wrong-case"},
    {"name": "no-type"},
]


def test_rule_models_equal_what_the_sdk_builds_for_every_shape() -> None:
    built = m.FirewallPolicyFilterRuleCollection(_collection(rule_models(ODD_RULES)))
    sdk = m.FirewallPolicyFilterRuleCollection(_collection(ODD_RULES))
    assert shape(built) == shape(sdk)
    assert json.dumps(built.as_dict()) == json.dumps(sdk.as_dict())
    kinds = [type(r).__name__ for r in built.rules]
    application, network, other = ["ApplicationRule"] * 5, ["NetworkRule"] * 2, "NatRule"
    assert kinds == [*application, *network, other, "FirewallPolicyRule", "FirewallPolicyRule"]


def test_rule_models_leave_what_they_do_not_build_for_the_sdk() -> None:
    odd = [
        *ODD_RULES[3:5],
        *ODD_RULES[7:],
        {"ruleType": "ApplicationRule", "name": "protocol-string", "protocols": "Https"},
        "not a rule",
    ]
    assert rule_models(odd) == odd
    assert all(a is b for a, b in zip(rule_models(odd), odd, strict=True))


def _allowlists() -> list[Allowlist]:
    mixed = config_with(
        extra_dependencies=[
            {"host": "db.example.com", "port": 5432, "protocol": "tcp", "purpose": "db"},
            {"host": "web.example.com", "port": 8080, "protocol": "http", "purpose": "web"},
            {"host": "big.example.com", "port": 64001, "protocol": "https", "purpose": "high"},
            {"host": "192.0.2.7", "port": 123, "protocol": "udp", "purpose": "ntp"},
        ]
    )
    return [
        full_allowlist(),
        full_allowlist(fqdn_tag=False),
        build_allowlist(requirements_for(mixed), ["10.1.16.0/20", "10.1.32.0/20"]),
    ]


@pytest.mark.parametrize("allowlist", _allowlists())
def test_the_firewall_group_is_the_model_the_sdk_builds_from_the_rest_mapping(
    allowlist: Allowlist,
) -> None:
    rest, _ = rest_group(allowlist, RenderOptions())
    group, _ = firewall_group(allowlist, RenderOptions())
    assert shape(group) == shape(m.FirewallPolicyRuleCollectionGroup(rest))
    assert json.dumps(group.as_dict()) == json.dumps(rest)


@pytest.mark.parametrize("allowlist", _allowlists())
@pytest.mark.parametrize("fmt", ["azure-firewall", "nsg"])
def test_the_model_is_written_as_what_its_as_dict_returns(allowlist: Allowlist, fmt: str) -> None:
    """The JSON formats write the SDK model itself (its mapping), not an `as_dict()` copy."""
    if fmt == "nsg":
        group, _ = network_security_group(allowlist, RenderOptions())
    else:
        group, _ = firewall_group(allowlist, RenderOptions())
    written = render_allowlist(fmt, allowlist, RenderOptions()).text
    assert written == orjson.dumps(group.as_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"


def test_no_two_rule_models_share_a_list() -> None:
    group, _ = firewall_group(full_allowlist(), RenderOptions())
    rules = [r for c in group.properties.rule_collections for r in c.rules]
    first, second = rules[0], rules[1]
    before = list(second["sourceAddresses"])
    first["sourceAddresses"].append("192.0.2.0/24")
    assert second["sourceAddresses"] == before
    assert first["sourceAddresses"] is not second["sourceAddresses"]


def _outcome(document: Any) -> Any:
    try:
        policy = load_policy(document)
    except PolicyFormatError as exc:
        return ("error", str(exc))
    return (policy.rules, policy.skipped, [shape(model) for model in policy.models])


def _policy_documents() -> list[Any]:
    documents = [json.loads(p.read_text()) for p in sorted(AUDIT_FIXTURES.glob("*.json"))]
    odd = [r for r in ODD_RULES if r.get("ruleType") != "applicationrule" and "ruleType" in r]
    documents.append({"properties": {"priority": 100, "ruleCollections": [_collection(odd)]}})
    documents.append({"properties": {"priority": 100, "ruleCollections": [_collection(ODD_RULES)]}})
    documents.append({"properties": {"priority": 100, "ruleCollections": "not a list"}})
    return documents


@pytest.mark.parametrize("document", _policy_documents())
def test_policy_loading_gives_what_the_sdk_group_constructor_gives(
    document: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = _outcome(document)
    monkeypatch.setattr(policy_module, "group_model", m.FirewallPolicyRuleCollectionGroup)
    assert loaded == _outcome(document)
