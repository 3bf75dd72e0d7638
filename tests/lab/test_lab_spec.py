"""The lab spec, its address plan and the rendered configs: pure, no root needed."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from aksflight.lab import LabHost, LabSpec, LabSpecError, spec_from_hosts
from aksflight.lab.render import (
    Interfaces,
    dnsmasq_config,
    endpoint_configs,
    endpoint_worker_count,
    firewall_ruleset,
    namespace_batches,
    port_mode,
    root_batch,
)
from aksflight.lab.spec import plan_addresses, privatelink_name, spec_from_dict, spec_to_dict


def test_spec_from_hosts_applies_each_behaviour_to_its_host() -> None:
    spec = spec_from_hosts(
        [("A.example.com.", (443,)), ("b.example.com", (443,)), ("a.example.com", (8443,))],
        drop=["a.example.com"],
        private=["b.example.com"],
        other_ca=["B.EXAMPLE.COM"],
    )
    assert [(h.name, h.ports, h.behaviour, h.answer, h.ca) for h in spec.hosts] == [
        ("a.example.com", (443, 8443), "drop", "public", "lab"),
        ("b.example.com", (443,), "open", "private", "other"),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"drop": ["c.example.com"]}, "drop: host c.example.com is not in the lab"),
        ({"nxdomain": ["x"]}, "nxdomain: host x is not in the lab"),
        (
            {"drop": ["a.example.com"], "reject": ["a.example.com"]},
            "reject: host a.example.com is already set to drop",
        ),
        ({"name": "Lab-1"}, "lab name 'Lab-1' must be"),
        ({"name": "waytoolongname"}, "lab name 'waytoolongname' must be"),
        ({"node_address": "10.10.0.4"}, "overlaps the lab's own range 10.10.0.0/16"),
        ({"node_address": "10.240.0.0"}, "network or broadcast"),
        ({"node_address": "nope"}, "not an IPv4 address"),
    ],
)
def test_bad_spec_input_is_one_line_error(kwargs: dict, message: str) -> None:
    with pytest.raises(LabSpecError) as caught:
        spec_from_hosts([("a.example.com", (443,))], **kwargs)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "name", ["", "bad_name.example.com", "*.data.mcr.microsoft.com", "-a.com", "a" * 64 + ".com"]
)
def test_host_names_must_be_dns_names(name: str) -> None:
    with pytest.raises(LabSpecError, match="not a valid DNS name"):
        LabHost(name)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ports", (0,), "port 0 is not in 1-65535"),
        ("ports", (), "needs at least one port"),
        ("behaviour", "blackhole", "behaviour 'blackhole' is not one of"),
        ("answer", "both", "answer 'both' is not one of"),
        ("ca", "self", "ca 'self' is not one of"),
    ],
)
def test_host_fields_are_validated(field: str, value: object, message: str) -> None:
    with pytest.raises(LabSpecError, match=message):
        LabHost("a.example.com", **{field: value})


def test_duplicate_hosts_and_single_label_privatelink_are_refused() -> None:
    with pytest.raises(LabSpecError, match="listed twice"):
        LabSpec(hosts=[LabHost("a.example.com"), LabHost("A.example.com")])
    with pytest.raises(LabSpecError, match="at least two labels"):
        LabHost("db", privatelink=True)


def test_address_plan_gives_every_host_its_own_address_in_the_right_range() -> None:
    names = [f"h{i}.example.com" for i in range(1000)]
    spec = spec_from_hosts([(n, (443,)) for n in names], private=names[:3])
    plan = plan_addresses(spec)
    addresses = [ipaddress.IPv4Address(plan.hosts[n]) for n in names]
    assert len(set(addresses)) == 1000
    private_pool = ipaddress.IPv4Network("10.10.0.0/16")
    assert all(a in private_pool for a in addresses[:3])
    assert all(a not in private_pool and a.packed[-1] not in (0, 255) for a in addresses[3:])
    assert str(addresses[3]) == "198.51.100.1"
    node_subnet = ipaddress.IPv4Network("10.240.0.0/16")
    assert not any(a in node_subnet for a in addresses)
    assert (plan.node, plan.node_gateway, plan.nameserver) == (
        "10.240.0.4",
        "10.240.0.1",
        "10.255.53.53",
    )


def test_spec_round_trips_through_its_dict_form() -> None:
    spec = spec_from_hosts(
        [("a.example.com", (443, 5432))], privatelink=["a.example.com"], default_deny=True
    )
    assert spec_from_dict(spec_to_dict(spec)) == spec
    with pytest.raises(LabSpecError, match="not a lab spec"):
        spec_from_dict({"name": "x"})


def test_interface_names_fit_the_kernel_limit() -> None:
    interfaces = Interfaces.for_lab("abcdefghij")
    assert all(len(name) <= 15 for name in dataclasses.astuple(interfaces))
    assert "link add abcdefghij-nf netns abcdefghij-node type veth" in root_batch(
        LabSpec(name="abcdefghij")
    )


def test_dnsmasq_config_answers_each_behaviour() -> None:
    spec = spec_from_hosts(
        [
            ("open.example.com", (443,)),
            ("gone.example.com", (443,)),
            ("acct.blob.core.windows.net", (443,)),
        ],
        nxdomain=["gone.example.com"],
        privatelink=["acct.blob.core.windows.net"],
    )
    plan = plan_addresses(spec)
    lines = dnsmasq_config(spec, plan).splitlines()
    assert lines[:2] == ["filter-AAAA", "address=/#/"]
    assert f"address=/open.example.com/{plan.hosts['open.example.com']}" in lines
    assert f"host-record=open.example.com,{plan.hosts['open.example.com']}" in lines
    assert "address=/gone.example.com/" in lines
    target = privatelink_name("acct.blob.core.windows.net")
    assert target == "acct.privatelink.blob.core.windows.net"
    assert f"cname=acct.blob.core.windows.net,{target}" in lines
    assert f"host-record={target},{plan.hosts['acct.blob.core.windows.net']}" in lines


def test_firewall_ruleset_orders_drops_before_the_allowlist_jump() -> None:
    spec = spec_from_hosts(
        [("d.example.com", (443,)), ("r.example.com", (443,))],
        drop=["d.example.com"],
        reject=["r.example.com"],
        default_deny=True,
    )
    plan = plan_addresses(spec)
    rules = [line.strip() for line in firewall_ruleset(spec, plan).splitlines()]
    drop = rules.index(f"ip daddr {plan.hosts['d.example.com']} drop")
    reject = rules.index(
        f"ip daddr {plan.hosts['r.example.com']} meta l4proto tcp reject with tcp reset"
    )
    jump = rules.index("jump allowlist")
    assert drop < jump and reject < jump
    assert "type filter hook forward priority filter; policy drop;" in rules
    assert rules[0] == "flush ruleset"
    open_spec = spec_from_hosts([("d.example.com", (443,))])
    assert "policy accept;" in firewall_ruleset(open_spec, plan_addresses(open_spec))


def test_namespace_batches_put_host_addresses_on_the_service_side() -> None:
    spec = spec_from_hosts([("a.example.com", (443,)), ("b.example.com", (443,))], name="lab1")
    plan = plan_addresses(spec)
    batches = namespace_batches(spec, plan)
    for host_address in plan.hosts.values():
        assert f"addr add {host_address}/32 dev lab1-sf" in batches["svc"]
    assert "route add default via 10.240.0.1" in batches["node"]
    assert all(batch.startswith("link set lo up") for batch in batches.values())


def test_ports_choose_https_http_or_plain_tcp() -> None:
    assert [port_mode(p) for p in (443, 8443, 80, 5432)] == ["https", "https", "http", "tcp"]
    spec = spec_from_hosts([("db.example.com", (5432, 443))], privatelink=["db.example.com"])
    [config] = endpoint_configs(spec, plan_addresses(spec), {}, "certs", workers=1)
    assert [(item["port"], item["mode"], item["names"]) for item in config["listeners"]] == [
        (5432, "tcp", ["db.example.com", "db.privatelink.example.com"]),
        (443, "https", ["db.example.com", "db.privatelink.example.com"]),
    ]


def test_large_labs_split_hosts_over_workers() -> None:
    assert [endpoint_worker_count(n, cpus=2) for n in (1, 150, 151, 1000)] == [1, 1, 2, 2]
    assert endpoint_worker_count(1000, cpus=16) == 4
    names = [f"h{i}.example.com" for i in range(5)]
    spec = spec_from_hosts([(n, (443, 80)) for n in names])
    configs = endpoint_configs(spec, plan_addresses(spec), {}, "certs", workers=2)
    served = [[item["host"].split(".")[0] for item in c["listeners"]] for c in configs]
    assert served == [["h0", "h0", "h2", "h2", "h4", "h4"], ["h1", "h1", "h3", "h3"]]
