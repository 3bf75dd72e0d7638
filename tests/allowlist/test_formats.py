"""Every format's output is read back by a real parser or model and says the same thing."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import jsonschema
import pytest
import yaml
from azure.mgmt.network import models as m

from reports.allowlist import Allowlist, RenderOptions, Target, render_allowlist
from reports.allowlist.squid import wildcard_regex
from tests.allowlist.cilium_schema import SCHEMA as CILIUM_SCHEMA
from tests.allowlist.support import bicep_properties, full_allowlist, have, resolved_options


@pytest.fixture(scope="module")
def allowlist() -> Allowlist:
    return full_allowlist()


@pytest.fixture(scope="module")
def arm(allowlist: Allowlist) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(render_allowlist("azure-firewall", allowlist).text)
    return data


def _rules(arm: dict[str, Any], rule_type: str) -> dict[str, dict[str, Any]]:
    return {
        r["name"]: r
        for c in arm["properties"]["ruleCollections"]
        for r in c["rules"]
        if r["ruleType"] == rule_type
    }


def test_arm_json_loads_into_the_sdk_models_and_round_trips(arm: dict[str, Any]) -> None:
    group = m.FirewallPolicyRuleCollectionGroup(arm)
    assert group.as_dict() == arm
    collections = group.properties.rule_collections
    assert all(isinstance(c, m.FirewallPolicyFilterRuleCollection) for c in collections)
    kinds = {type(r) for c in collections for r in c.rules}
    assert kinds == {m.ApplicationRule, m.NetworkRule}
    assert [c.action.type for c in collections] == ["Allow", "Allow"]
    assert group.properties.priority == 500


def test_arm_json_puts_web_names_in_application_rules_and_the_rest_in_network_rules(
    arm: dict[str, Any],
) -> None:
    app = _rules(arm, "ApplicationRule")
    net = _rules(arm, "NetworkRule")
    assert app["azureml-aks-mcr"]["targetFqdns"] == ["mcr.microsoft.com"]
    assert app["azureml-aks-mcr"]["protocols"] == [{"protocolType": "Https", "port": 443}]
    assert app["azureml-aks-mcr-data"]["targetFqdns"] == ["*.data.mcr.microsoft.com"]
    assert app["aks-base-aks-fqdn-tag"]["fqdnTags"] == ["AzureKubernetesService"]
    tunnel = net["aks-base-aks-tunnel-udp"]
    assert tunnel["ipProtocols"] == ["UDP"]
    assert tunnel["destinationAddresses"] == ["AzureCloud.westeurope"]
    assert tunnel["destinationPorts"] == ["1194"]
    assert net["aks-base-aks-ntp"]["destinationFqdns"] == ["ntp.ubuntu.com"]
    assert net["network-dns-10.1.0.4"]["destinationAddresses"] == ["10.1.0.4"]
    for rule in [*app.values(), *net.values()]:
        assert rule["sourceAddresses"] == ["10.1.16.0/20", "10.1.32.0/20"]


def test_every_rule_names_its_requirements_phase_and_source(arm: dict[str, Any]) -> None:
    app = _rules(arm, "ApplicationRule")
    mcr = app["azureml-aks-mcr"]["description"]
    assert "azureml-aks/mcr" in mcr and "aks-base/aks-mcr" in mcr
    assert "phase router-install" in mcr
    assert "how-to-deploy-azure-kubernetes-service.md" in mcr
    for rules in (app, _rules(arm, "NetworkRule")):
        for rule in rules.values():
            assert re.search(
                r"aksflight \S+/\S+ .*\| phase [a-z-]+.*\| source: \S", rule["description"]
            )


def test_api_server_is_folded_into_the_wildcard_that_covers_it(arm: dict[str, Any]) -> None:
    app = _rules(arm, "ApplicationRule")
    assert "azureml-aks-api-server" not in app
    wildcard = app["aks-base-aks-api-fqdns"]
    assert wildcard["targetFqdns"] == ["*.hcp.westeurope.azmk8s.io"]
    assert "azureml-aks/api-server" in wildcard["description"]


def test_nsg_loads_into_the_sdk_model_and_holds_only_tags_and_addresses(
    allowlist: Allowlist,
) -> None:
    rendered = render_allowlist("nsg", allowlist)
    document = json.loads(rendered.text)
    group = m.NetworkSecurityGroup(document)
    assert group.as_dict() == document
    rules = group.properties.security_rules
    destinations = {r.properties.destination_address_prefix for r in rules}
    assert destinations == {"AzureCloud.westeurope", "10.1.0.4", "10.1.0.5"}
    assert {r.properties.direction for r in rules} == {"Outbound"}
    assert [r.properties.priority for r in rules] == list(range(1000, 1000 + len(rules)))
    assert any("NSGs cannot filter by FQDN" in w for w in rendered.warnings)


def _hcl_plain(value: Any) -> Any:
    """python-hcl2 8 keeps the quotes of strings and marks blocks; drop both."""
    if isinstance(value, dict):
        return {_hcl_plain(k): _hcl_plain(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [_hcl_plain(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def test_terraform_parses_with_python_hcl2_and_matches_the_arm_json(
    allowlist: Allowlist, arm: dict[str, Any]
) -> None:
    parsed = _hcl_plain(hcl2.loads(render_allowlist("terraform", allowlist).text))
    assert parsed["variable"][0]["firewall_policy_id"]["type"] in ("string", "${string}")
    group = parsed["resource"][0]["azurerm_firewall_policy_rule_collection_group"]["aksflight"]
    assert group["priority"] == 500
    assert "var.firewall_policy_id" in group["firewall_policy_id"]
    tf_app = {r["name"]: r for c in group["application_rule_collection"] for r in c["rule"]}
    tf_net = {r["name"]: r for c in group["network_rule_collection"] for r in c["rule"]}
    arm_app = _rules(arm, "ApplicationRule")
    arm_net = _rules(arm, "NetworkRule")
    assert set(tf_app) == set(arm_app) and set(tf_net) == set(arm_net)
    for name, rule in arm_app.items():
        assert tf_app[name].get("destination_fqdns", []) == rule.get("targetFqdns", [])
        assert tf_app[name].get("destination_fqdn_tags", []) == rule.get("fqdnTags", [])
        assert tf_app[name]["description"] == rule["description"]
        assert [(p["type"], p["port"]) for p in tf_app[name]["protocols"]] == [
            (p["protocolType"], p["port"]) for p in rule["protocols"]
        ]
    for name, rule in arm_net.items():
        assert tf_net[name]["protocols"] == rule["ipProtocols"]
        assert tf_net[name]["destination_ports"] == rule["destinationPorts"]
        assert tf_net[name]["source_addresses"] == rule["sourceAddresses"]
        assert tf_net[name].get("destination_addresses", []) == rule.get("destinationAddresses", [])


def test_bicep_properties_read_back_equal_the_arm_json(
    allowlist: Allowlist, arm: dict[str, Any]
) -> None:
    text = render_allowlist("bicep", allowlist).text
    assert (
        "resource aksflightRules 'Microsoft.Network/firewallPolicies/ruleCollectionGroups@" in text
    )
    assert "parent: firewallPolicy" in text
    assert bicep_properties(text) == arm["properties"]


def _fake_az(tmp_path: Path) -> dict[str, str]:
    """An `az` on PATH that records each call's arguments, NUL-separated, one empty per call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "az-calls"
    script = bin_dir / "az"
    record = "{ for a in \"$@\"; do printf '%s\\0' \"$a\"; done; printf '\\0'; }"
    script.write_text(f"#!/usr/bin/env bash\n{record} >> {shlex.quote(str(log))}\n")
    script.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    return {**env, "RESOURCE_GROUP": "rg-net", "POLICY_NAME": "fw-policy", "AZ_LOG": str(log)}


def _calls(log: Path) -> list[list[str]]:
    calls: list[list[str]] = [[]]
    for word in log.read_text().split("\0")[:-1]:
        if word:
            calls[-1].append(word)
        else:
            calls.append([])
    return calls[:-1]


def _flag_values(args: list[str], flag: str) -> list[str]:
    if flag not in args:
        return []
    values = []
    for value in args[args.index(flag) + 1 :]:
        if value.startswith("--"):
            break
        values.append(value)
    return values


def test_az_cli_script_passes_bash_n_and_runs_the_commands_the_arm_json_describes(
    allowlist: Allowlist, arm: dict[str, Any], tmp_path: Path
) -> None:
    script = tmp_path / "rules.sh"
    script.write_text(render_allowlist("az-cli", allowlist).text)
    subprocess.run(["bash", "-n", str(script)], check=True)
    env = _fake_az(tmp_path)
    subprocess.run(["bash", str(script)], check=True, env=env, timeout=60)
    calls = _calls(Path(env["AZ_LOG"]))
    assert calls[0][:5] == ["network", "firewall", "policy", "rule-collection-group", "create"]
    assert _flag_values(calls[0], "--policy-name") == ["fw-policy"]
    by_name: dict[str, list[str]] = {}
    for call in calls[1:]:
        name_flag = "--rule-name" if "add-filter-collection" in call else "--name"
        by_name[_flag_values(call, name_flag)[0]] = call
    app = _rules(arm, "ApplicationRule")
    net = _rules(arm, "NetworkRule")
    assert set(by_name) == set(app) | set(net)
    for name, rule in app.items():
        assert _flag_values(by_name[name], "--target-fqdns") == rule.get("targetFqdns", [])
        assert _flag_values(by_name[name], "--description") == [rule["description"]]
    for name, rule in net.items():
        assert _flag_values(by_name[name], "--ip-protocols") == rule["ipProtocols"]
        assert _flag_values(by_name[name], "--destination-ports") == rule["destinationPorts"]


def test_az_cli_script_refuses_to_run_without_its_target(
    allowlist: Allowlist, tmp_path: Path
) -> None:
    script = tmp_path / "rules.sh"
    script.write_text(render_allowlist("az-cli", allowlist).text)
    env = _fake_az(tmp_path)
    del env["POLICY_NAME"]
    done = subprocess.run(
        ["bash", str(script)], check=False, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0 and "POLICY_NAME" in done.stderr
    assert not Path(env["AZ_LOG"]).exists()


@pytest.mark.skipif(
    not (have("nft") and have("unshare")) or os.geteuid() != 0, reason="needs nft, unshare, root"
)
@pytest.mark.parametrize("resolved", [True, False], ids=["resolved", "unresolved"])
def test_nftables_passes_nft_check(allowlist: Allowlist, tmp_path: Path, resolved: bool) -> None:
    options = resolved_options(allowlist) if resolved else RenderOptions()
    path = tmp_path / "allowlist.nft"
    path.write_text(render_allowlist("nftables", allowlist, options).text)
    # In a new network namespace, so the check cannot touch the machine's own ruleset.
    done = subprocess.run(
        ["unshare", "--net", "nft", "-c", "-f", str(path)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_nftables_matches_resolved_addresses_from_the_node_subnets(allowlist: Allowlist) -> None:
    options = resolved_options(allowlist)
    assert options.resolved is not None
    text = render_allowlist("nftables", allowlist, options).text
    mcr_v4, mcr_v6 = options.resolved["mcr.microsoft.com"]
    assert f"elements = {{ {mcr_v4} }}" in text
    assert "ip6 saddr" not in text  # the node subnets are IPv4 only
    assert mcr_v6 not in text
    assert re.search(
        r"ip saddr @aksflight_nodes_v4 ip daddr @azureml_aks_mcr_v4 tcp dport 443 accept "
        r'comment "azureml-aks/mcr aks-base/aks-mcr \[router-install\]"',
        text,
    )
    assert "udp dport 53 accept" in text
    assert "# left out: azureml-aks/mcr-data" in text
    assert "hook" not in text and "policy" not in text.split("table inet")[1]


@pytest.mark.skipif(not have("squid"), reason="needs squid")
def test_squid_config_passes_squid_parse(allowlist: Allowlist, tmp_path: Path) -> None:
    fragment = tmp_path / "aksflight.conf"
    fragment.write_text(render_allowlist("squid", allowlist).text)
    main = tmp_path / "squid.conf"
    main.write_text(
        f"http_port 127.0.0.1:3128\ninclude {fragment}\nhttp_access deny all\n"
        f"pid_filename {tmp_path / 'squid.pid'}\n"
    )
    done = subprocess.run(
        ["squid", "-k", "parse", "-f", str(main)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    problems = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if re.search(r"\b(ERROR|WARNING|FATAL|Bungled)\b", line)
    ]
    assert problems == []


def test_squid_wildcards_exclude_the_apex_and_names_are_exact(allowlist: Allowlist) -> None:
    text = render_allowlist("squid", allowlist).text
    regexes = re.findall(r"dstdom_regex -n -i (\S+)", text)
    assert wildcard_regex("*.data.mcr.microsoft.com") in regexes
    pattern = re.compile(wildcard_regex("*.data.mcr.microsoft.com"), re.IGNORECASE)
    assert pattern.search("westeurope.data.mcr.microsoft.com")
    assert pattern.search("a.b.data.mcr.microsoft.com")
    assert not pattern.search("data.mcr.microsoft.com")
    assert not pattern.search("data.mcr.microsoft.com.evil.example")
    assert not pattern.search("xdata.mcr.microsoft.com")
    assert "dstdomain -n mcr.microsoft.com" in text
    assert "dstdomain -n .mcr" not in text  # Squid's leading dot would add the apex
    assert "AzureCloud.westeurope (udp 1194)" in text  # listed as left out, not allowed


def test_cilium_policy_parses_and_validates_against_the_crd_shape(allowlist: Allowlist) -> None:
    rendered = render_allowlist("cilium", allowlist)
    policy = yaml.safe_load(rendered.text)
    jsonschema.validate(policy, CILIUM_SCHEMA)
    dns_rule, *rules = policy["specs"]
    allowed_names = [s for r in rules for e in r["egress"] for s in e.get("toFQDNs", [])]
    dns_names = dns_rule["egress"][0]["toPorts"][0]["rules"]["dns"]
    assert dns_names == allowed_names  # pods may look up exactly the names they may reach
    assert {"matchPattern": "*.data.mcr.microsoft.com"} in allowed_names
    assert all(r["description"].startswith("aksflight ") for r in rules)
    assert any("matches one label only" in w for w in rendered.warnings)


def test_csv_has_one_row_per_rule_with_its_requirements(allowlist: Allowlist) -> None:
    rows = list(csv.DictReader(io.StringIO(render_allowlist("csv", allowlist).text)))
    assert len(rows) == len(allowlist.rules)
    mcr = next(r for r in rows if r["destination"] == "mcr.microsoft.com")
    assert mcr["requirements"] == "azureml-aks/mcr aks-base/aks-mcr"
    assert (mcr["protocol"], mcr["port"], mcr["phases"]) == ("https", "443", "router-install")
    assert mcr["sources"] == "10.1.16.0/20 10.1.32.0/20"
    kinds = {r["destination"]: r["destination_type"] for r in rows}
    assert kinds["*.data.mcr.microsoft.com"] == Target.WILDCARD.value
    assert kinds["AzureCloud.westeurope"] == Target.SERVICE_TAG.value


def test_txt_groups_by_phase_and_lists_what_is_left_out(allowlist: Allowlist) -> None:
    text = render_allowlist("txt", allowlist).text
    install = text.index("(router-install)")
    deploy = text.index("(model-deploy)")
    assert install < text.index("mcr.microsoft.com") < deploy < text.index("mlweuacr.azurecr.io")
    assert "azureml-aks/k8s-version: in-cluster traffic" in text


def test_shell_quoting_keeps_apostrophes_and_semicolons_as_data(tmp_path: Path) -> None:
    from reports.allowlist.iac import render_az_cli

    group = {
        "name": "g",
        "properties": {
            "priority": 100,
            "ruleCollections": [
                {
                    "name": "c",
                    "priority": 100,
                    "action": {"type": "Allow"},
                    "rules": [
                        {
                            "name": "r",
                            "ruleType": "ApplicationRule",
                            "description": "the router's config; a test",
                            "protocols": [{"protocolType": "Https", "port": 443}],
                            "sourceAddresses": ["10.0.0.0/8"],
                            "targetFqdns": ["a.example.com"],
                        }
                    ],
                }
            ],
        },
    }
    text = render_az_cli(group, "t", [])
    command = next(line for line in text.split("\n\n") if "add-filter-collection" in line)
    words = shlex.split(command.replace("\\\n", " "), comments=True)
    assert _flag_values(words, "--description") == ["the router's config; a test"]


def test_the_rest_mapping_the_iac_formats_use_is_what_the_sdk_model_serialises(
    allowlist: Allowlist,
) -> None:
    from reports.allowlist.azure import rest_group

    rest, _ = rest_group(allowlist, RenderOptions())
    assert m.FirewallPolicyRuleCollectionGroup(rest).as_dict() == rest
