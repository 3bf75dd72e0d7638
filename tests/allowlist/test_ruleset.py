"""The format-neutral rules: merging, skipping, phases, wildcard semantics and compaction."""

from __future__ import annotations

import pytest

from reports.allowlist import (
    NoSourcesError,
    Semantics,
    Target,
    UnsafeValueError,
    UnsupportedError,
    build_allowlist,
    name_matches,
    render_allowlist,
)
from reports.allowlist.wildcards import compact
from rules.catalogue import requirements_for
from rules.model import Phase, Protocol, Requirement
from tests.allowlist.support import config_with, full_allowlist
from tests.conftest import example_config


def _by_id(rules: object) -> dict[str, object]:
    return {rid: rule for rule in rules for rid in rule.requirement_ids}  # type: ignore[attr-defined]


def test_duplicates_from_two_catalogues_share_one_rule() -> None:
    allowlist = full_allowlist()
    mcr = [r for r in allowlist.rules if r.destination.value == "mcr.microsoft.com"]
    assert len(mcr) == 1
    assert mcr[0].requirement_ids == ("azureml-aks/mcr", "aks-base/aks-mcr")
    assert len({r.name for r in allowlist.rules}) == len(allowlist.rules)


def test_in_cluster_and_client_side_needs_are_skipped_with_their_reason() -> None:
    config = example_config("key-auth-auto-domain.yaml")
    allowlist = build_allowlist(requirements_for(config), ["10.0.0.0/16"])
    reasons = {s.requirement_id: s.reason for s in allowlist.skipped}
    assert "in-cluster" in reasons["azureml-aks/k8s-version"]
    assert "resolved by clients" in reasons["azureml-aks/scoring-endpoint"]
    assert all(not s.warn for s in allowlist.skipped)
    assert "azureml-aks/scoring-endpoint" not in _by_id(allowlist.rules)


def test_undocumented_names_of_a_sovereign_cloud_are_left_out_with_a_warning() -> None:
    config = example_config("china-token-auth.yaml")
    allowlist = build_allowlist(requirements_for(config), ["10.0.0.0/16"])
    left_out = {s.requirement_id for s in allowlist.skipped if s.warn}
    assert {"azureml-aks/kusto-telemetry", "azureml-aks/azureml-api"} <= left_out
    assert all("<" not in r.destination.value for r in allowlist.rules)
    assert any("kusto-telemetry" in w for w in allowlist.warnings)


def test_the_fqdn_tag_is_only_added_when_asked_and_then_warns() -> None:
    without = full_allowlist(fqdn_tag=False)
    assert Target.FQDN_TAG not in {r.destination.kind for r in without.rules}
    with_tag = full_allowlist(fqdn_tag=True)
    tag = [r for r in with_tag.rules if r.destination.kind is Target.FQDN_TAG]
    assert [r.destination.value for r in tag] == ["AzureKubernetesService"]
    assert any("missed hosts" in w for w in with_tag.warnings)


def test_phase_filter_keeps_requirements_of_those_phases_only() -> None:
    config = example_config("token-auth-private-endpoints.yaml")
    allowlist = build_allowlist(
        requirements_for(config), ["10.0.0.0/16"], phases=[Phase.MODEL_DEPLOY]
    )
    ids = set(_by_id(allowlist.rules))
    assert {"azureml-aks/acr", "azureml-aks/acr-data", "azureml-aks/storage-blob"} <= ids
    assert "azureml-aks/mcr" not in ids and "azureml-aks/storage-table" not in ids
    assert all(r.phases == (Phase.MODEL_DEPLOY,) for r in allowlist.rules)


def test_a_wildcard_from_an_unset_field_says_which_field_narrows_it() -> None:
    config = config_with(cluster={"name": "ml-weu"})
    allowlist = build_allowlist(requirements_for(config), ["10.0.0.0/16"])
    assert any("cluster.api_server_fqdn" in n for n in allowlist.notes)


def test_formats_that_need_sources_refuse_to_allow_any_source() -> None:
    config = example_config("token-auth-private-endpoints.yaml")
    allowlist = build_allowlist(requirements_for(config), [])
    for fmt in ("azure-firewall", "bicep", "terraform", "az-cli", "nsg", "squid", "nftables"):
        with pytest.raises(NoSourcesError, match="source CIDRs"):
            render_allowlist(fmt, allowlist)
    assert render_allowlist("cilium", allowlist).text  # pod-centric: no source CIDRs


def test_an_unknown_format_is_a_one_line_error() -> None:
    with pytest.raises(UnsupportedError, match="unknown format 'pf'"):
        render_allowlist("pf", full_allowlist())


def _requirement(host: str, **fields: object) -> Requirement:
    base: dict[str, object] = {
        "id": "mine/x",
        "catalogue": "mine",
        "host": host,
        "port": 443,
        "protocol": Protocol.HTTPS,
        "phases": (Phase.SERVING,),
        "purpose": "p",
        "source": "s",
    }
    base.update(fields)
    return Requirement(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "host",
    [
        "evil.com\nhttp_access allow all",
        "a.b'c.com",
        "a.b;rm -rf.com",
        "$(id).example.com",
        "ex\u0430mple.com",
        "*evil.com",
        "x.*.com",
        "localhost",
        "a..b.com",
    ],
)
def test_a_host_that_slipped_past_the_config_is_refused_at_emission(host: str) -> None:
    with pytest.raises(UnsafeValueError, match="refusing to emit"):
        build_allowlist([_requirement(host)], ["10.0.0.0/16"])


def test_a_requirement_without_a_port_is_refused() -> None:
    with pytest.raises(UnsafeValueError):
        build_allowlist([_requirement("a.example.com", port=None)], ["10.0.0.0/16"])


@pytest.mark.parametrize(
    ("pattern", "name", "any_depth", "one_label"),
    [
        ("*.data.mcr.microsoft.com", "westeurope.data.mcr.microsoft.com", True, True),
        ("*.data.mcr.microsoft.com", "a.b.data.mcr.microsoft.com", True, False),
        ("*.data.mcr.microsoft.com", "data.mcr.microsoft.com", False, False),
        ("*.data.mcr.microsoft.com", "xdata.mcr.microsoft.com", False, False),
        ("mcr.microsoft.com", "mcr.microsoft.com", True, True),
    ],
)
def test_wildcard_semantics_per_firewall(
    pattern: str, name: str, any_depth: bool, one_label: bool
) -> None:
    assert name_matches(pattern, name, Semantics.ANY_DEPTH) is any_depth
    assert name_matches(pattern, name, Semantics.ONE_LABEL) is one_label
    assert name_matches(pattern, name, Semantics.NONE) is (pattern == name)


def test_compaction_folds_only_what_the_wildcard_covers_in_that_format() -> None:
    requirements = [
        _requirement("*.example.com", id="mine/wild"),
        _requirement("a.example.com", id="mine/one-label"),
        _requirement("a.b.example.com", id="mine/two-labels"),
        _requirement("example.com", id="mine/apex"),
        _requirement("a.example.com", id="mine/other-port", port=8443),
        _requirement("*.b.example.com", id="mine/narrow-wild"),
    ]
    rules = build_allowlist(requirements, ["10.0.0.0/16"]).rules

    def kept(semantics: Semantics) -> dict[str, tuple[str, ...]]:
        return {
            r.destination.value + f":{r.port}": r.requirement_ids for r in compact(rules, semantics)
        }

    azure = kept(Semantics.ANY_DEPTH)
    assert azure["*.example.com:443"] == (
        "mine/wild",
        "mine/one-label",
        "mine/two-labels",
        "mine/narrow-wild",
    )
    assert set(azure) == {"*.example.com:443", "example.com:443", "a.example.com:8443"}
    cilium = kept(Semantics.ONE_LABEL)
    assert cilium["*.example.com:443"] == ("mine/wild", "mine/one-label")
    # Cilium's `*.b.example.com` covers `a.b.example.com` (one label), `*.example.com` does not.
    assert cilium["*.b.example.com:443"] == ("mine/narrow-wild", "mine/two-labels")
    assert "example.com:443" in cilium
    assert len(kept(Semantics.NONE)) == len(rules)


def test_https_above_port_64000_goes_to_a_network_rule_in_azure_firewall() -> None:
    import json

    requirements = [
        _requirement("a.example.com", id="mine/high", port=64500),
        _requirement("*.example.com", id="mine/high-wild", port=64500),
    ]
    rendered = render_allowlist("azure-firewall", build_allowlist(requirements, ["10.0.0.0/16"]))
    rules = [
        r for c in json.loads(rendered.text)["properties"]["ruleCollections"] for r in c["rules"]
    ]
    assert [(r["ruleType"], r.get("destinationFqdns"), r["destinationPorts"]) for r in rules] == [
        ("NetworkRule", ["a.example.com"], ["64500"])
    ]
    assert any("above what application rules take" in w for w in rendered.warnings)
    assert any("network rules take no wildcards" in w for w in rendered.warnings)
