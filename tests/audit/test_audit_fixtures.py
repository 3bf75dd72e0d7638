"""The audit's verdict per requirement id for each fixture policy (tests/audit/fixtures)."""

from __future__ import annotations

from reports.audit import Verdict
from tests.audit.support import ALL_IDS, audit_fixture, by_id, verdicts

ALLOWED, DENIED, NOT_COVERED = Verdict.ALLOWED, Verdict.DENIED, Verdict.NOT_COVERED


def test_fixture_requirements_are_the_expected_set() -> None:
    assert set(verdicts(audit_fixture("allow-nothing.json"))) == ALL_IDS


def test_a_policy_that_allows_everything_allows_each_requirement_and_is_flagged() -> None:
    result = audit_fixture("allow-everything.json")
    assert verdicts(result) == dict.fromkeys(ALL_IDS, ALLOWED)
    # Network rules come first, so the any-any network rule is what allows even HTTPS.
    assert by_id(result, "azureml-aks/mcr").decisions[0].rule == "OpenEverything/any-any/everything"
    broad = {b.rule: b.reasons for b in result.broad_rules}
    assert set(broad["OpenEverything/any-any/everything"]) >= {
        "any source",
        "any destination address (* or 0.0.0.0/0)",
        "any port",
    }
    assert "any name (*)" in broad["OpenEverything/any-web/all-names"]
    assert not result.failed


def test_a_policy_that_allows_nothing_covers_no_requirement_and_fails() -> None:
    result = audit_fixture("allow-nothing.json")
    assert verdicts(result) == dict.fromkeys(ALL_IDS, NOT_COVERED)
    assert by_id(result, "azureml-aks/acr").uncovered == ("10.1.16.0/20", "10.1.32.0/20")
    assert result.broad_rules == ()
    assert result.failed


def test_an_arm_export_that_allows_all_but_the_registry() -> None:
    result = audit_fixture("all-but-one.json")
    expected = dict.fromkeys(ALL_IDS, ALLOWED)
    expected["azureml-aks/acr"] = NOT_COVERED
    assert verdicts(result) == expected
    assert result.groups == (
        "DefaultNetworkRuleCollectionGroup",
        "DefaultApplicationRuleCollectionGroup",
    )
    assert by_id(result, "aks-base/aks-tunnel-udp").decisions[0].rule == (
        "DefaultNetworkRuleCollectionGroup/aks-network/tunnel-udp"
    )
    assert result.failed


def test_wildcards_follow_azure_firewall_semantics() -> None:
    result = audit_fixture("wildcards.json")
    rule = {
        v.requirement_id: v.decisions[0].rule.split("/")[-1] for v in result.verdicts if v.decisions
    }
    assert rule["azureml-aks/api-server"] == "aks-api"  # *.x matches a subdomain
    assert rule["aks-base/aks-api-fqdns"] == "aks-api"  # ... and the same wildcard
    assert rule["azureml-aks/mcr-data"] == "microsoft"  # *.microsoft.com covers *.data.mcr...
    assert rule["azureml-aks/mcr"] == "microsoft"
    assert rule["azureml-aks/azureml-api"] == "azureml"  # *azureml.ms covers the apex
    assert rule["azureml-aks/storage-blob"] == rule["azureml-aks/storage-table"] == "storage"
    assert rule["aks-base/aks-tunnel-udp"] == "azurecloud"  # AzureCloud covers .westeurope
    status = verdicts(result)
    assert status["aks-base/aks-packages-aks"] is NOT_COVERED  # packages.aks.azure.com
    assert status["aks-base/aks-management"] is NOT_COVERED
    assert status["aks-base/aks-ntp"] is NOT_COVERED


def test_a_deny_in_an_earlier_group_or_collection_wins() -> None:
    result = audit_fixture("deny-earlier.json")
    expected = dict.fromkeys(ALL_IDS, ALLOWED)
    expected["azureml-aks/acr"] = DENIED
    expected["aks-base/aks-login"] = DENIED
    assert verdicts(result) == expected
    assert by_id(result, "azureml-aks/acr").decisions[0].rule == "Deny/no-registries/no-acr"
    # Within group Mixed the Deny collection has the lower priority number, so it comes first.
    assert (
        by_id(result, "aks-base/aks-login").decisions[0].rule == "Mixed/deny-login-first/no-login"
    )
    assert "denied by Deny/no-registries/no-acr" in by_id(result, "azureml-aks/acr").detail


def test_rules_for_another_source_do_not_cover_the_nodes() -> None:
    result = audit_fixture("other-source.json")
    status = verdicts(result)
    assert status == dict.fromkeys(ALL_IDS, NOT_COVERED)
    mcr = by_id(result, "azureml-aks/mcr")
    assert [d.sources for d in mcr.decisions] == [("10.1.16.0/20",)]
    assert mcr.uncovered == ("10.1.32.0/20",)
    assert mcr.detail == (
        "no rule allows it from 10.1.32.0/20; allowed by fw-classic/half-the-nodes/mcr only "
        "from 10.1.16.0/20"
    )


def test_network_rules_are_applied_before_application_rules_whatever_the_priority() -> None:
    result = audit_fixture("network-first.json")
    status = verdicts(result)
    web = {i for i in ALL_IDS if "tunnel" not in i and "ntp" not in i}
    assert {i: status[i] for i in web} == dict.fromkeys(web, DENIED)
    assert by_id(result, "azureml-aks/mcr").decisions[0].rule == "Order/tcp-443-denied/no-443"


def test_a_rule_for_some_names_of_a_wildcard_does_not_allow_it() -> None:
    from tests.audit.support import audit_document

    document = {
        "properties": {
            "priority": 100,
            "ruleCollections": [
                {
                    "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                    "name": "c",
                    "priority": 100,
                    "action": {"type": "Allow"},
                    "rules": [
                        {
                            "ruleType": "ApplicationRule",
                            "name": "one-region",
                            "sourceAddresses": ["10.1.0.0/16"],
                            "protocols": [{"protocolType": "Https", "port": 443}],
                            "targetFqdns": [
                                "westeurope.data.mcr.microsoft.com",
                                "data.mcr.microsoft.com",
                            ],
                        }
                    ],
                }
            ],
        }
    }
    result = audit_document(document)
    mcr_data = by_id(result, "azureml-aks/mcr-data")
    assert mcr_data.verdict is NOT_COVERED
    assert mcr_data.notes == ("group0/c/one-region allows only some of the names",)
