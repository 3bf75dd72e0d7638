"""Reading policy documents, rendering the result, and the `aksflight audit` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.network import models as m

from aksflight.cli import main
from reports.allowlist import RenderOptions, render_allowlist
from reports.audit import PolicyFormatError, Verdict, audit_policy, load_policy, render_audit
from tests.audit.support import CONFIG, FIXTURES, audit_document, audit_fixture, fixture_allowlist


def test_the_generated_allowlist_passes_its_own_audit() -> None:
    allowlist = fixture_allowlist()
    document = json.loads(render_allowlist("azure-firewall", allowlist, RenderOptions()).text)
    result = audit_policy(load_policy(document), allowlist)
    assert {v.verdict for v in result.verdicts} == {Verdict.ALLOWED}
    assert result.broad_rules == ()


def test_policies_are_read_into_the_sdk_models() -> None:
    policy = load_policy(json.loads((FIXTURES / "deny-earlier.json").read_text()))
    assert all(isinstance(g, m.FirewallPolicyRuleCollectionGroup) for g in policy.models)
    classic = load_policy(json.loads((FIXTURES / "other-source.json").read_text()))
    assert isinstance(classic.models[0], m.AzureFirewall)
    collections = classic.models[0].properties.application_rule_collections
    assert isinstance(collections[0].properties.rules[0], m.AzureFirewallApplicationRule)


def test_az_cli_output_of_a_group_is_read_like_the_rest_shape() -> None:
    rest = json.loads((FIXTURES / "allow-nothing.json").read_text())
    flattened = {"name": rest["name"], **rest["properties"]}
    assert [r.ref for r in load_policy(flattened).rules] == [r.ref for r in load_policy(rest).rules]


def test_dnat_collections_are_noted_not_evaluated() -> None:
    document = {
        "properties": {
            "priority": 100,
            "ruleCollections": [
                {
                    "ruleCollectionType": "FirewallPolicyNatRuleCollection",
                    "name": "inbound",
                    "priority": 100,
                    "action": {"type": "DNAT"},
                    "rules": [],
                }
            ],
        }
    }
    policy = load_policy(document)
    assert policy.rules == () and "DNAT" in policy.skipped[0]


def _group(rule: dict[str, Any], **collection: Any) -> dict[str, Any]:
    body = {
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
        "name": "c",
        "priority": 100,
        "action": {"type": "Allow"},
        "rules": [rule],
    }
    body.update(collection)
    return {"properties": {"priority": 100, "ruleCollections": [body]}}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not a policy", r"\$: expected an object or a list"),
        ({"hello": 1}, r"\$: not a rule collection group"),
        ({"resources": []}, "holds no rule collection group"),
        ({"properties": {"priority": "high", "ruleCollections": []}}, "priority must be a whole"),
        (_group({"ruleType": "Magic", "name": "x"}), r"rules\[0\]: unknown ruleType 'Magic'"),
        (_group({"ruleType": "NetworkRule", "destinationPorts": ["https"]}), "not ports"),
        (
            _group({"ruleType": "ApplicationRule", "targetFqdns": "a.com"}),
            "targetFqdns: expected a list",
        ),
        (_group({"ruleType": "ApplicationRule"}, action={"type": "Maybe"}), "Allow or Deny"),
    ],
)
def test_malformed_documents_are_one_line_errors_that_say_where(
    document: Any, message: str
) -> None:
    with pytest.raises(PolicyFormatError, match=message):
        load_policy(document)


def test_hostile_rule_names_are_cleaned_in_every_report() -> None:
    rule = {
        "ruleType": "ApplicationRule",
        "name": "evil\x1b[31m|`x`\n[bold]",
        "sourceAddresses": ["*"],
        "protocols": [{"protocolType": "Https", "port": 443}],
        "targetFqdns": ["*"],
    }
    result = audit_document(_group(rule))
    for fmt in ("table", "json", "markdown"):
        text = render_audit(fmt, result)
        assert "\x1b" not in text and "evil?" in text
    assert "group0/c/evil?[31m|`x`?[bold]" in render_audit("json", result)
    markdown = render_audit("markdown", result)
    assert "evil?\\[31m\\|\\`x\\`?\\[bold\\]" in markdown


def test_json_report_has_a_schema_and_a_verdict_per_requirement() -> None:
    document = json.loads(render_audit("json", audit_fixture("all-but-one.json")))
    assert document["schema"] == "aksflight.audit/v1"
    assert document["verdict"] == "fail"
    acr = next(r for r in document["requirements"] if r["id"] == "azureml-aks/acr")
    assert acr["verdict"] == "not-covered" and acr["uncovered_sources"] == [
        "10.1.16.0/20",
        "10.1.32.0/20",
    ]
    assert document["summary"] == {"allowed": 18, "denied": 0, "not-covered": 1}


def test_cli_exits_1_when_a_required_host_is_not_allowed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["audit", "-c", str(CONFIG), "--policy", str(FIXTURES / "all-but-one.json")]
    assert main([*argv, "-o", "markdown"]) == 1
    out = capsys.readouterr().out
    assert (
        "| `azureml-aks/acr` | model-deploy | mlweuacr.azurecr.io https/443 | not-covered |" in out
    )
    assert (
        main(["audit", "-c", str(CONFIG), "--policy", str(FIXTURES / "allow-everything.json")]) == 0
    )


def test_cli_exits_0_when_only_warn_severity_needs_are_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads((FIXTURES / "allow-everything.json").read_text())
    deny_kusto = {
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
        "name": "no-telemetry",
        "priority": 50,
        "action": {"type": "Deny"},
        "rules": [
            {
                "ruleType": "NetworkRule",
                "name": "kusto",
                "ipProtocols": ["TCP"],
                "sourceAddresses": ["*"],
                "destinationFqdns": ["ingest-viennawesteurope.kusto.windows.net"],
                "destinationPorts": ["443"],
            }
        ],
    }
    document["properties"]["ruleCollections"].insert(0, deny_kusto)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(document))
    assert main(["audit", "-c", str(CONFIG), "--policy", str(policy), "-o", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    kusto = next(r for r in report["requirements"] if r["id"] == "azureml-aks/kusto-telemetry")
    assert (kusto["verdict"], kusto["severity"]) == ("denied", "warn")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give --policy FILE.json, or --live"),
        (["--policy", "missing.json"], "missing.json: policy file not found"),
        (["--live", "--subscription", "s"], "--live needs --resource-group, --policy-name"),
        (["--policy", str(FIXTURES / "config.yaml")], "not valid JSON at line 1"),
        (
            ["--policy", str(FIXTURES / "all-but-one.json"), "--source-cidr", "nope"],
            "--source-cidr",
        ),
    ],
)
def test_cli_bad_input_is_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "-c", str(CONFIG), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_reports_a_malformed_policy_with_its_file_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.json"
    policy.write_text(json.dumps({"properties": {"priority": 1.5, "ruleCollections": []}}))
    assert main(["audit", "-c", str(CONFIG), "--policy", str(policy)]) == 2
    assert (
        f"{policy}: $.properties.priority: priority must be a whole number"
        in capsys.readouterr().err
    )


def test_cli_without_node_subnets_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "region: eastus\ncluster: {name: c1}\nregistry: myacr01\nstorage_account: st01\n"
    )
    policy = str(FIXTURES / "allow-everything.json")
    assert main(["audit", "-c", str(config), "--policy", policy]) == 2
    assert "no source CIDRs" in capsys.readouterr().err


def test_a_policy_nested_too_deeply_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "deep.json"
    policy.write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert main(["audit", "-c", str(CONFIG), "--policy", str(policy)]) == 2
    err = capsys.readouterr().err
    assert "nested too deeply" in err and err.count("\n") == 1
