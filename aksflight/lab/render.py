"""Pure renderers: the text of every config the lab loads (ip batches, nftables, dnsmasq).

Kept free of I/O so that the exact configs are unit-tested without root, and so that `up`
is a short sequence of "load this text into that namespace" steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aksflight.lab.spec import (
    DNS_LINK,
    PRIVATE_POOL,
    PUBLIC_POOLS,
    SERVICE_LINK,
    AddressPlan,
    LabHost,
    LabSpec,
    node_subnet,
    privatelink_name,
)

#: The firewall table in the lab's fw namespace. An allowlist adds rules to its `allowlist`
#: chain (see docs/lab.md); the table name is the same in every lab, since each lab has its
#: own namespace and so its own nftables ruleset.
FIREWALL_TABLE = "aksflight"
FIREWALL_BASE_CHAIN = "forward"
ALLOWLIST_CHAIN = "allowlist"
DNS_DROP_TABLE = "aksflight_dns"

#: Ports served over TLS with an HTTP/1.1 responder; plain HTTP ports; all others plain TCP.
HTTPS_PORTS = frozenset({443, 6443, 8443, 9443})
HTTP_PORTS = frozenset({80, 8080})

Role = Literal["node", "fw", "dns", "svc"]
ROLES: tuple[Role, ...] = ("node", "fw", "dns", "svc")


def namespace(lab: str, role: Role) -> str:
    """`aflab` + `node` -> `aflab-node`; every lab namespace starts with `<lab>-`."""
    return f"{lab}-{role}"


@dataclass(frozen=True, slots=True)
class Interfaces:
    """veth names, `<lab>-<this side><peer side>`: at most 13 characters (limit 15)."""

    node_to_fw: str
    fw_to_node: str
    fw_to_dns: str
    dns_to_fw: str
    fw_to_svc: str
    svc_to_fw: str

    @classmethod
    def for_lab(cls, lab: str) -> Interfaces:
        return cls(
            node_to_fw=f"{lab}-nf",
            fw_to_node=f"{lab}-fn",
            fw_to_dns=f"{lab}-fd",
            dns_to_fw=f"{lab}-df",
            fw_to_svc=f"{lab}-fs",
            svc_to_fw=f"{lab}-sf",
        )


def root_batch(spec: LabSpec) -> str:
    """`ip -batch` input run in the root namespace: the namespaces and the veth pairs.

    Each veth end is created directly inside its namespace, so nothing ever appears in (or
    links to) the root namespace.
    """
    ns = {role: namespace(spec.name, role) for role in ROLES}
    ifs = Interfaces.for_lab(spec.name)
    lines = [f"netns add {ns[role]}" for role in ROLES]
    pairs: list[tuple[str, Role, str, Role]] = [
        (ifs.node_to_fw, "node", ifs.fw_to_node, "fw"),
        (ifs.fw_to_dns, "fw", ifs.dns_to_fw, "dns"),
        (ifs.fw_to_svc, "fw", ifs.svc_to_fw, "svc"),
    ]
    for left, left_ns, right, right_ns in pairs:
        lines.append(
            f"link add {left} netns {ns[left_ns]} type veth peer name {right} netns {ns[right_ns]}"
        )
    return "\n".join(lines) + "\n"


def namespace_batches(spec: LabSpec, plan: AddressPlan) -> dict[Role, str]:
    """`ip -n <ns> -batch` input per namespace: links up, addresses, routes."""
    ifs = Interfaces.for_lab(spec.name)
    node_prefix = node_subnet(spec.node_address).prefixlen
    dns_prefix = DNS_LINK.split("/")[1]
    svc_prefix = SERVICE_LINK.split("/")[1]
    node = [
        "link set lo up",
        f"link set {ifs.node_to_fw} up",
        f"addr add {plan.node}/{node_prefix} dev {ifs.node_to_fw}",
        f"route add default via {plan.node_gateway}",
    ]
    fw = [
        "link set lo up",
        *(f"link set {dev} up" for dev in (ifs.fw_to_node, ifs.fw_to_dns, ifs.fw_to_svc)),
        f"addr add {plan.node_gateway}/{node_prefix} dev {ifs.fw_to_node}",
        f"addr add {plan.dns_gateway}/{dns_prefix} dev {ifs.fw_to_dns}",
        f"addr add {plan.service_gateway}/{svc_prefix} dev {ifs.fw_to_svc}",
        *(
            f"route add {pool} via {plan.service_link} dev {ifs.fw_to_svc}"
            for pool in (*PUBLIC_POOLS, PRIVATE_POOL)
        ),
    ]
    dns = [
        "link set lo up",
        f"link set {ifs.dns_to_fw} up",
        f"addr add {plan.nameserver}/{dns_prefix} dev {ifs.dns_to_fw}",
        f"route add default via {plan.dns_gateway}",
    ]
    svc = [
        "link set lo up",
        f"link set {ifs.svc_to_fw} up",
        f"addr add {plan.service_link}/{svc_prefix} dev {ifs.svc_to_fw}",
        *(f"addr add {address}/32 dev {ifs.svc_to_fw}" for address in plan.hosts.values()),
        f"route add default via {plan.service_gateway}",
    ]
    return {
        "node": "\n".join(node) + "\n",
        "fw": "\n".join(fw) + "\n",
        "dns": "\n".join(dns) + "\n",
        "svc": "\n".join(svc) + "\n",
    }


def dnsmasq_config(spec: LabSpec, plan: AddressPlan) -> str:
    """dnsmasq config: one answer per host, NXDOMAIN for the rest, no upstream, no AAAA.

    `host-record` makes the exact name local data (so AAAA gets an empty NOERROR answer under
    `filter-AAAA`, not REFUSED); `address=/name/ip` also answers the name's subdomains;
    `address=/#/` turns every other name into NXDOMAIN, like a resolver that knows only its
    zones. Private endpoints answer through Azure's `privatelink.` CNAME.
    """
    lines = ["filter-AAAA", "address=/#/"]
    for host in spec.hosts:
        address = plan.hosts[host.name]
        if host.behaviour == "nxdomain":
            lines.append(f"address=/{host.name}/")
        elif host.privatelink:
            target = privatelink_name(host.name)
            lines.append(f"cname={host.name},{target}")
            lines.append(f"host-record={target},{address}")
        else:
            lines.append(f"address=/{host.name}/{address}")
            lines.append(f"host-record={host.name},{address}")
    return "\n".join(lines) + "\n"


def dnsmasq_argv(
    dnsmasq: str, config_path: str, pid_path: str, log_path: str, listen: str
) -> list[str]:
    """The dnsmasq command line: foreground (its pid is ours to stop), no system files read."""
    return [
        dnsmasq,
        "--keep-in-foreground",
        f"--conf-file={config_path}",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        f"--listen-address={listen}",
        f"--pid-file={pid_path}",
        f"--log-facility={log_path}",
        "--log-queries",
        "--user=root",
        "--group=root",
    ]


def _host_rules(host: LabHost, address: str) -> list[str]:
    if host.behaviour == "drop":
        return [f"ip daddr {address} drop"]
    if host.behaviour == "reject":
        return [
            f"ip daddr {address} meta l4proto tcp reject with tcp reset",
            f"ip daddr {address} reject",
        ]
    return []


def firewall_ruleset(spec: LabSpec, plan: AddressPlan) -> str:
    """The fw namespace's whole ruleset (loaded with `flush ruleset` first, so it is exact).

    Order in the base chain: per-host drop/reject (they win over any allowlist), replies of
    allowed connections, DNS to the lab resolver, then `jump allowlist`. With default deny
    the base chain's policy is drop, so only what the allowlist accepts gets out.
    """
    policy = "drop" if spec.default_deny else "accept"
    rules = [
        f"type filter hook forward priority filter; policy {policy};",
        *(rule for host in spec.hosts for rule in _host_rules(host, plan.hosts[host.name])),
        "ct state established,related accept",
        f"ip daddr {plan.nameserver} meta l4proto {{ tcp, udp }} th dport 53 accept",
        f"jump {ALLOWLIST_CHAIN}",
    ]
    body = "\n".join(f"\t\t{rule}" for rule in rules)
    return (
        "flush ruleset\n"
        f"table inet {FIREWALL_TABLE} {{\n"
        f"\tchain {ALLOWLIST_CHAIN} {{\n\t}}\n"
        f"\tchain {FIREWALL_BASE_CHAIN} {{\n{body}\n\t}}\n"
        "}\n"
    )


def dns_drop_ruleset() -> str:
    """Drop DNS on the server's own input hook: the client waits (a drop in the client's
    OUTPUT chain would fail at once with EPERM instead of timing out)."""
    return (
        "flush ruleset\n"
        f"table inet {DNS_DROP_TABLE} {{\n"
        "\tchain input {\n"
        "\t\ttype filter hook input priority filter; policy accept;\n"
        "\t\tmeta l4proto { tcp, udp } th dport 53 drop\n"
        "\t}\n"
        "}\n"
    )


def port_mode(port: int) -> Literal["https", "http", "tcp"]:
    """What the endpoint server speaks on a port: HTTPS, plain HTTP, or accept-only TCP."""
    if port in HTTPS_PORTS:
        return "https"
    if port in HTTP_PORTS:
        return "http"
    return "tcp"


#: Above this many hosts the endpoints are split over several worker processes, which issue
#: their hosts' certificates and build their TLS contexts in parallel (about 1 ms per host).
HOSTS_PER_WORKER = 150
MAX_WORKERS = 4


def endpoint_worker_count(hosts: int, cpus: int) -> int:
    """One worker per `HOSTS_PER_WORKER` hosts, at most one per CPU and `MAX_WORKERS`."""
    return max(1, min(MAX_WORKERS, cpus, -(-hosts // HOSTS_PER_WORKER)))


def endpoint_configs(
    spec: LabSpec,
    plan: AddressPlan,
    authorities: dict[str, dict[str, str]],
    certs_dir: str,
    workers: int,
) -> list[dict[str, object]]:
    """One config per endpoint worker; a host's listeners all go to the same worker.

    `authorities` maps `lab`/`other` to `{"cert": path, "key": path}`; workers write each
    host's key and certificate chain to `<certs_dir>/<host>.pem`.
    """
    configs: list[dict[str, object]] = []
    for index in range(workers):
        listeners: list[dict[str, object]] = []
        for host in spec.hosts[index::workers]:
            names = [host.name, privatelink_name(host.name)] if host.privatelink else [host.name]
            listeners.extend(
                {
                    "host": host.name,
                    "address": plan.hosts[host.name],
                    "port": port,
                    "mode": port_mode(port),
                    "ca": host.ca,
                    "names": names,
                }
                for port in host.ports
            )
        configs.append({"authorities": authorities, "certs_dir": certs_dir, "listeners": listeners})
    return configs


def resolv_conf(plan: AddressPlan) -> str:
    """For `/etc/netns/<ns>/resolv.conf`: the system resolver inside the lab is the lab's."""
    return f"nameserver {plan.nameserver}\noptions timeout:1 attempts:2\n"
