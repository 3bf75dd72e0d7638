"""Property tests: any valid config yields only validated values; hostile ones never get out.

Valid configs are generated through `rules.config.parse_config` with random valid values.
Every format's output is read back by its parser and each host name, CIDR, address, tag and
port in it is checked with `rules.names`. Hostile strings (quotes, newlines, `;`, `$(...)`,
back-ticks, Unicode look-alikes) put into any config field must be rejected by the config
layer or by the generators, before any output exists.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
import shlex
import subprocess
from typing import Any

import hcl2
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from reports.allowlist import (
    FORMATS,
    AllowlistError,
    RenderOptions,
    UnsafeValueError,
    UnsupportedError,
    build_allowlist,
    render_allowlist,
)
from rules.catalogue import requirements_for
from rules.clouds import cloud_profile
from rules.config import EnvironmentConfig, parse_config
from rules.errors import ConfigError
from rules.names import check_cidr, check_hostname, is_ip_address
from tests.allowlist.support import bicep_properties, fake_resolution

_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9]+(\.[A-Za-z][A-Za-z0-9]*)?$")
_LABEL = st.from_regex(r"\A[a-z][a-z0-9]{0,10}(-[a-z0-9]{1,6})?\Z")
_HOST = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(_LABEL, min_size=1, max_size=3),
    st.sampled_from(["com", "net", "io", "azure.com"]),
)
_SAFE_TEXT = st.text(alphabet="abcdefgh xyz0123456789'.,;:/()-", max_size=40)
_REGIONS = sorted(cloud_profile("public").regions)


def _cidr(bits: int, prefix: int) -> str:
    return str(ipaddress.ip_network((bits, prefix), strict=False))


_CIDRS = st.builds(_cidr, st.integers(0, 2**32 - 1), st.integers(8, 30))
_ADDRESS = st.builds(lambda n: str(ipaddress.IPv4Address(n)), st.integers(2**24, 2**32 - 2**24))


@st.composite
def valid_config_data(draw: st.DrawFn) -> dict[str, Any]:
    region = draw(st.sampled_from(_REGIONS))
    name = draw(_LABEL)
    cluster: dict[str, Any] = {"name": name}
    if draw(st.booleans()):
        cluster["api_server_fqdn"] = f"{name}-{draw(_LABEL)}.hcp.{region}.azmk8s.io"
    dependency = st.fixed_dictionaries(
        {
            "host": st.one_of(_HOST, _ADDRESS),
            "port": st.integers(1, 65535),
            "protocol": st.sampled_from(["tcp", "udp", "http", "https"]),
            "purpose": _SAFE_TEXT,
        }
    )
    auth = draw(st.sampled_from(["key", "token"]))
    service: dict[str, Any] = {"auth": auth}
    if draw(st.booleans()):
        service.update(domain="auto", leaf_domain_label=draw(_LABEL))
    return {
        "region": region,
        "cluster": cluster,
        "registry": draw(st.from_regex(r"\A[a-zA-Z0-9]{5,12}\Z")),
        "storage_account": draw(st.from_regex(r"\A[a-z0-9]{3,24}\Z")),
        "service": service,
        "workspace": {"id": draw(_LABEL)} if draw(st.booleans()) else {},
        "extra_dependencies": draw(st.lists(dependency, max_size=4)),
        "network": {
            "source_cidrs": draw(st.lists(_CIDRS, min_size=1, max_size=3, unique=True)),
            "nameservers": draw(st.lists(_ADDRESS, max_size=2, unique=True)),
        },
        "catalogues": draw(
            st.lists(st.sampled_from(["aks-base", "azureml-workspace"]), unique=True)
        ),
    }


# -- checks of what each parser reads back ---------------------------------------------------


def _host_ok(value: str) -> bool:
    return check_hostname(value, allow_wildcard=True) is None


def _destination_ok(value: str) -> bool:
    return is_ip_address(value) or bool(_TAG.match(value)) or _host_ok(value)


def _port_ok(value: object) -> bool:
    return str(value).isdigit() and 1 <= int(str(value)) <= 65535


def _check_arm_rule(rule: dict[str, Any]) -> None:
    assert all(check_cidr(c) is None for c in rule["sourceAddresses"])
    assert all(_host_ok(h) for h in rule.get("targetFqdns", []) + rule.get("destinationFqdns", []))
    assert all(_TAG.match(t) for t in rule.get("fqdnTags", []))
    assert all(_destination_ok(d) for d in rule.get("destinationAddresses", []))
    assert all(_port_ok(p) for p in rule.get("destinationPorts", []))
    assert all(_port_ok(p["port"]) and p["port"] <= 64000 for p in rule.get("protocols", []))
    assert set(rule.get("ipProtocols", [])) <= {"TCP", "UDP"}
    assert not re.search(r"[\"`\\$\x00-\x1f]", rule["description"])


def _check_arm(document: dict[str, Any]) -> None:
    for collection in document["properties"]["ruleCollections"]:
        for rule in collection["rules"]:
            _check_arm_rule(rule)


def _check_nsg(document: dict[str, Any]) -> None:
    for rule in document["properties"]["securityRules"]:
        props = rule["properties"]
        assert all(check_cidr(c) is None for c in props["sourceAddressPrefixes"])
        assert _destination_ok(props["destinationAddressPrefix"])
        assert _port_ok(props["destinationPortRange"])


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k.strip('"'): _plain(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value.strip('"') if isinstance(value, str) else value


def _check_terraform(text: str) -> None:
    parsed = _plain(hcl2.loads(text))
    group = next(
        iter(parsed["resource"][0]["azurerm_firewall_policy_rule_collection_group"].values())
    )
    for key in ("application_rule_collection", "network_rule_collection"):
        for collection in group.get(key, []):
            for rule in collection["rule"]:
                assert all(check_cidr(c) is None for c in rule["source_addresses"])
                for field in ("destination_fqdns", "destination_addresses"):
                    assert all(_destination_ok(v) for v in rule.get(field, []))
                assert all(_port_ok(p) for p in rule.get("destination_ports", []))


_AZ_VALUE_FLAGS = {
    "--source-addresses": lambda v: check_cidr(v) is None,
    "--target-fqdns": _host_ok,
    "--destination-fqdns": _host_ok,
    "--destination-addresses": _destination_ok,
    "--destination-ports": _port_ok,
    "--ip-protocols": lambda v: v in ("TCP", "UDP"),
    "--protocols": lambda v: re.fullmatch(r"Https?=\d{1,5}", v) is not None,
    "--fqdn-tags": lambda v: bool(_TAG.match(v)),
}


def _check_az_cli(text: str) -> None:
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)
    for block in text.split("\n\n"):
        words = shlex.split(block.replace("\\\n", " "), comments=True)
        flag = None
        for word in words:
            if word.startswith("--"):
                flag = word
            elif flag in _AZ_VALUE_FLAGS:
                assert _AZ_VALUE_FLAGS[flag](word), (flag, word)


def _check_cilium(text: str) -> None:
    policy = yaml.safe_load(text)
    for spec in policy["specs"]:
        for egress in spec["egress"]:
            for selector in egress.get("toFQDNs", []):
                assert all(_host_ok(v) for v in selector.values())
            for cidr in egress.get("toCIDR", []):
                assert check_cidr(cidr) is None
            for ports in egress["toPorts"]:
                assert all(_port_ok(p["port"]) for p in ports["ports"])
                for selector in ports.get("rules", {}).get("dns", []):
                    assert all(_host_ok(v) for v in selector.values())


_NFT_TOKEN = re.compile(
    r"^(ip|ip6|saddr|daddr|tcp|udp|dport|accept|comment|set|type|flags|interval|elements|=|"
    r"table|inet|chain|[{},;]|ipv4_addr|ipv6_addr|@[a-z0-9_]+|[a-z0-9_]+_v[46]|\d{1,5})$"
)


def _check_nft(text: str) -> None:
    for line in text.splitlines():
        code = re.sub(r'comment "[^"\\]*"', "", line.split("#", 1)[0])
        for token in code.replace(",", " , ").replace("{", " { ").replace("}", " } ").split():
            assert (
                _NFT_TOKEN.match(token)
                or check_cidr(token) is None
                or is_ip_address(token)
                or token in ("aksflight", "allowlist")
            ), token


def _check_squid(text: str) -> None:
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        words = line.split()
        assert words[0] in ("acl", "http_access"), line
        if words[0] == "acl" and words[2] == "src":
            assert all(check_cidr(c) is None for c in words[3:])
        elif words[0] == "acl" and words[2] == "dstdomain":
            assert words[3] == "-n" and _host_ok(words[4]) and len(words) == 5
        elif words[0] == "acl" and words[2] == "dstdom_regex":
            assert re.fullmatch(r"(\\\.[a-z0-9-]+)+\$", words[5]), words[5]
        elif words[0] == "acl" and words[2] == "port":
            assert _port_ok(words[3])


def _check_csv(text: str) -> None:
    for row in csv.DictReader(io.StringIO(text)):
        assert _destination_ok(row["destination"])
        assert _port_ok(row["port"])
        assert all(check_cidr(c) is None for c in row["sources"].split())


def check_output(fmt: str, text: str) -> None:
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text)
    assert text.isascii()
    if fmt == "azure-firewall":
        _check_arm(json.loads(text))
    elif fmt == "bicep":
        _check_arm({"properties": bicep_properties(text)})
    elif fmt == "nsg":
        _check_nsg(json.loads(text))
    elif fmt == "terraform":
        _check_terraform(text)
    elif fmt == "az-cli":
        _check_az_cli(text)
    elif fmt == "cilium":
        _check_cilium(text)
    elif fmt == "nftables":
        _check_nft(text)
    elif fmt == "squid":
        _check_squid(text)
    elif fmt == "csv":
        _check_csv(text)


def _render_all(config: EnvironmentConfig) -> dict[str, str]:
    allowlist = build_allowlist(
        requirements_for(config),
        config.network.source_cidrs,
        dns_servers=config.network.nameservers,
        fqdn_tag=True,
    )
    out = {}
    for fmt in FORMATS:
        options = RenderOptions(resolved=fake_resolution(allowlist)) if fmt == "nftables" else None
        try:
            out[fmt] = render_allowlist(fmt, allowlist, options).text
        except UnsupportedError:
            continue  # e.g. an NSG for a config without tags or addresses: nothing to write
    return out


_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(valid_config_data())
def test_any_valid_config_yields_only_validated_values_in_every_format(
    data: dict[str, Any],
) -> None:
    config = parse_config(data)
    outputs = _render_all(config)
    assert {"azure-firewall", "terraform", "nftables", "csv"} <= set(outputs)
    for fmt, text in outputs.items():
        check_output(fmt, text)


@_SETTINGS
@given(valid_config_data())
def test_extra_dependency_purpose_survives_as_inert_data(data: dict[str, Any]) -> None:
    assume(data["extra_dependencies"])
    config = parse_config(data)
    text = _render_all(config)["csv"]
    purposes = {r["requirements"]: r["purpose"] for r in csv.DictReader(io.StringIO(text))}
    for index, dependency in enumerate(config.extra_dependencies):
        key = next(k for k in purposes if f"extra/{index}" in k.split())
        expected = dependency.purpose or "a dependency of the model"
        assert expected in purposes[key]


HOSTILE = [
    '"',
    "'",
    "\n",
    ";",
    "$(id)",
    "`id`",
    "\u0430",
    "\uff0e",
    "\u200b",
    " ",
    "\\",
    "{x}",
    "|",
    "\r",
    "\t",
    "%0a",
]
_FIELDS = [
    ("cluster", "name"),
    ("cluster", "api_server_fqdn"),
    ("registry", None),
    ("storage_account", None),
    ("extra_host", None),
    ("extra_purpose", None),
    ("leaf", None),
    ("workspace", "id"),
    ("source_cidr", None),
    ("nameserver", None),
]


def _inject(data: dict[str, Any], field: tuple[str, str | None], fragment: str, at: int) -> None:
    def spliced(value: str) -> str:
        cut = at % (len(value) + 1)
        return value[:cut] + fragment + value[cut:]

    kind, key = field
    if kind in ("cluster", "workspace"):
        assert key is not None
        defaults = {
            "name": "ml-weu",
            "api_server_fqdn": "ml-1.hcp.westeurope.azmk8s.io",
            "id": "ws1",
        }
        section = data.setdefault(kind, {})
        section[key] = spliced(section.get(key) or defaults[key])
    elif kind in ("registry", "storage_account"):
        data[kind] = spliced(data[kind])
    elif kind in ("extra_host", "extra_purpose"):
        entry = {"host": "db.example.com", "port": 5432, "purpose": "feature store"}
        name = "host" if kind == "extra_host" else "purpose"
        entry[name] = spliced(entry[name])
        data["extra_dependencies"] = [entry]
    elif kind == "leaf":
        data["service"] = {"domain": "auto", "leaf_domain_label": spliced("scoring")}
    elif kind == "source_cidr":
        data["network"]["source_cidrs"] = [spliced("10.1.16.0/20")]
    else:
        data["network"]["nameservers"] = [spliced("10.1.0.4")]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    valid_config_data(),
    st.sampled_from(_FIELDS),
    st.sampled_from(HOSTILE),
    st.integers(0, 60),
)
def test_hostile_strings_in_config_fields_never_reach_an_output(
    data: dict[str, Any], field: tuple[str, str | None], fragment: str, at: int
) -> None:
    _inject(data, field, fragment, at)
    try:
        config = parse_config(data)
    except ConfigError:
        return  # rejected by the config layer
    # Only free text (an extra dependency's purpose) may get here; the generators must
    # either refuse it or carry it as inert data that its parser reads back unchanged.
    assert field == ("extra_purpose", None), (field, fragment)
    try:
        outputs = _render_all(config)
    except UnsafeValueError:
        assert re.search(r'[^\x20-\x7e]|["`\\${}]', fragment)
        return
    assert fragment in ("'", ";", " ", "|", "%0a")
    for fmt, text in outputs.items():
        check_output(fmt, text)
    rows = list(csv.DictReader(io.StringIO(outputs["csv"])))
    extra = next(r for r in rows if "extra/0" in r["requirements"].split())
    assert extra["purpose"] == config.extra_dependencies[0].purpose


@pytest.mark.parametrize("fragment", HOSTILE)
def test_every_hostile_fragment_in_a_host_name_is_rejected_by_the_config(fragment: str) -> None:
    data = {
        "region": "westeurope",
        "cluster": {"name": "ml", "api_server_fqdn": f"ml{fragment}x.hcp.westeurope.azmk8s.io"},
        "registry": "mlweuacr",
        "storage_account": "mlweustorage",
    }
    with pytest.raises(ConfigError, match=r"cluster\.api_server_fqdn"):
        parse_config(data)


def test_generators_reject_hostile_text_even_from_a_catalogue() -> None:
    from rules.model import Phase, Protocol, Requirement

    hostile = Requirement(
        id="mine/x",
        catalogue="mine",
        host="a.example.com",
        port=443,
        protocol=Protocol.HTTPS,
        phases=(Phase.SERVING,),
        purpose="ok",
        source='docs"; rm -rf / #',
    )
    with pytest.raises(AllowlistError, match="not allowed in comments"):
        build_allowlist([hostile], ["10.0.0.0/16"])
