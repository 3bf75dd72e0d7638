"""The lab as plain data: which hosts exist, how each behaves, and the addresses they get.

A spec is validated when it is built, so `up` never starts on a name dnsmasq would refuse or
an address plan that overlaps the node subnet. Address allocation is pure and deterministic
(the same spec always gets the same addresses), which keeps rendered configs testable.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from aksflight.lab.errors import LabSpecError

Behaviour = Literal["open", "drop", "reject", "nxdomain"]
Answer = Literal["public", "private"]
CaChoice = Literal["lab", "other"]
DnsMode = Literal["ok", "drop"]

DEFAULT_LAB_NAME = "aflab"
DEFAULT_NODE_ADDRESS = "10.240.0.4"
NODE_PREFIX_LENGTH = 24

#: "Public" answers come from the documentation ranges first, then the benchmarking range
#: (RFC 2544), so a lab of a thousand hosts still gets one public-looking address per host.
PUBLIC_POOLS: tuple[str, ...] = (
    "198.51.100.0/24",
    "203.0.113.0/24",
    "192.0.2.0/24",
    "198.18.0.0/15",
)
#: "Private" answers (and every private-endpoint address) come from here.
PRIVATE_POOL = "10.10.0.0/16"
#: The firewall's link to the DNS namespace; the resolver is `.53`.
DNS_LINK = "10.255.53.0/24"
#: The firewall's point-to-point link to the services namespace.
SERVICE_LINK = "10.255.255.0/30"

_LAB_NAME = re.compile(r"^[a-z][a-z0-9]{0,9}$")
_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_MAX_DNS_NAME = 253


def check_lab_name(name: str) -> str:
    """A lab name is its namespaces' prefix: short (interface names) and dash-free (prefix
    matching must not confuse lab `a` with lab `a-b`)."""
    if not _LAB_NAME.fullmatch(name):
        raise LabSpecError(
            f"lab name {name!r} must be 1-10 lower-case letters or digits, starting with a letter"
        )
    return name


def normalise_host_name(raw: str) -> str:
    """Lower-case and strip one trailing dot; raise if the result is not a DNS host name."""
    name = raw.strip().lower().removesuffix(".")
    if not name or len(name) > _MAX_DNS_NAME:
        raise LabSpecError(f"host name {raw!r} is not a valid DNS name (1-253 characters)")
    for label in name.split("."):
        if not _DNS_LABEL.fullmatch(label):
            raise LabSpecError(
                f"host name {raw!r} is not a valid DNS name (bad label {label!r}; "
                "wildcards cannot be served by the lab)"
            )
    return name


def _check_choice(value: str, allowed: object, what: str) -> None:
    choices = get_args(allowed)
    if value not in choices:
        raise LabSpecError(f"{what} {value!r} is not one of {', '.join(choices)}")


def privatelink_name(host: str) -> str:
    """`acct.blob.core.windows.net` -> `acct.privatelink.blob.core.windows.net` (Azure's zone)."""
    first, _, rest = host.partition(".")
    if not rest:
        raise LabSpecError(f"host {host!r}: a private-endpoint name needs at least two labels")
    return f"{first}.privatelink.{rest}"


@dataclass(frozen=True, slots=True)
class LabHost:
    """One simulated destination: its name, ports, and how DNS and the firewall treat it.

    `behaviour`: `open` (reachable), `drop` (firewall drops: connect timeout), `reject`
    (firewall answers TCP reset: refused at once), `nxdomain` (DNS says the name does not
    exist). `answer` picks a public or private address; `privatelink` answers through the
    `<first-label>.privatelink.<rest>` CNAME with a private address; `ca="other"` serves a
    certificate from a CA the client does not trust.
    """

    name: str
    ports: tuple[int, ...] = (443,)
    behaviour: Behaviour = "open"
    answer: Answer = "public"
    privatelink: bool = False
    ca: CaChoice = "lab"

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", normalise_host_name(self.name))
        ports = tuple(dict.fromkeys(int(p) for p in self.ports))
        if not ports:
            raise LabSpecError(f"host {self.name}: needs at least one port")
        for port in ports:
            if not 1 <= port <= 65535:
                raise LabSpecError(f"host {self.name}: port {port} is not in 1-65535")
        object.__setattr__(self, "ports", ports)
        _check_choice(self.behaviour, Behaviour, f"host {self.name}: behaviour")
        _check_choice(self.answer, Answer, f"host {self.name}: answer")
        _check_choice(self.ca, CaChoice, f"host {self.name}: ca")
        if self.privatelink:
            privatelink_name(self.name)

    @property
    def is_private(self) -> bool:
        """Whether DNS answers with a private address (a private endpoint always does)."""
        return self.privatelink or self.answer == "private"


@dataclass(frozen=True, slots=True)
class LabSpec:
    """A whole lab: a name (prefix of its namespaces), its hosts, DNS mode and firewall mode.

    `dns="drop"` makes the resolver silent (a DNS timeout); `default_deny=True` drops all
    egress from the node except DNS to the lab resolver until an allowlist is applied.
    """

    name: str = DEFAULT_LAB_NAME
    hosts: Sequence[LabHost] = field(default_factory=tuple)
    dns: DnsMode = "ok"
    default_deny: bool = False
    node_address: str = DEFAULT_NODE_ADDRESS

    def __post_init__(self) -> None:
        check_lab_name(self.name)
        hosts = tuple(self.hosts)
        object.__setattr__(self, "hosts", hosts)
        seen: set[str] = set()
        for host in hosts:
            if not isinstance(host, LabHost):
                raise LabSpecError(f"lab {self.name}: hosts must be LabHost, not {host!r}")
            if host.name in seen:
                raise LabSpecError(f"lab {self.name}: host {host.name} is listed twice")
            seen.add(host.name)
        _check_choice(self.dns, DnsMode, "dns mode")
        _check_node_address(self.node_address)

    def host(self, name: str) -> LabHost:
        """The host of that name (normalised); `LabSpecError` when the lab has none."""
        wanted = normalise_host_name(name)
        for host in self.hosts:
            if host.name == wanted:
                return host
        raise LabSpecError(f"host {wanted} is not in lab {self.name}")


def _lab_networks() -> list[ipaddress.IPv4Network]:
    pools = [*PUBLIC_POOLS, PRIVATE_POOL, DNS_LINK, SERVICE_LINK]
    return [ipaddress.IPv4Network(p) for p in pools]


def _check_node_address(raw: str) -> None:
    try:
        address = ipaddress.IPv4Address(raw)
    except ipaddress.AddressValueError as exc:
        raise LabSpecError(f"node address {raw!r} is not an IPv4 address") from exc
    subnet = node_subnet(raw)
    if address in (subnet.network_address, subnet.broadcast_address):
        raise LabSpecError(f"node address {raw} is the network or broadcast address of {subnet}")
    for network in _lab_networks():
        if subnet.overlaps(network):
            raise LabSpecError(f"node subnet {subnet} overlaps the lab's own range {network}")


def node_subnet(node_address: str) -> ipaddress.IPv4Network:
    """The /24 the node sits in (the config's node subnet is usually a /16 around it)."""
    return ipaddress.IPv4Network(f"{node_address}/{NODE_PREFIX_LENGTH}", strict=False)


@dataclass(frozen=True, slots=True)
class AddressPlan:
    """Every address of a lab: node, gateway, resolver, links and one address per host."""

    node: str
    node_gateway: str
    nameserver: str
    dns_gateway: str
    service_gateway: str
    service_link: str
    hosts: dict[str, str]


def _pool_addresses(pools: Iterable[str]) -> Iterator[str]:
    for pool in pools:
        for address in ipaddress.IPv4Network(pool).hosts():
            if address.packed[-1] not in (0, 255):
                yield str(address)


def plan_addresses(spec: LabSpec) -> AddressPlan:
    """Deterministic address plan: hosts in spec order take the next public/private address."""
    subnet = node_subnet(spec.node_address)
    gateway = next(str(a) for a in subnet.hosts() if str(a) != spec.node_address)
    public = _pool_addresses(PUBLIC_POOLS)
    private = _pool_addresses([PRIVATE_POOL])
    hosts: dict[str, str] = {}
    for host in spec.hosts:
        try:
            hosts[host.name] = next(private if host.is_private else public)
        except StopIteration:
            raise LabSpecError(f"lab {spec.name}: too many hosts for the address pools") from None
    dns_link = ipaddress.IPv4Network(DNS_LINK)
    service_link = ipaddress.IPv4Network(SERVICE_LINK)
    return AddressPlan(
        node=spec.node_address,
        node_gateway=gateway,
        nameserver=str(dns_link.network_address + 53),
        dns_gateway=str(dns_link.network_address + 1),
        service_gateway=str(service_link.network_address + 1),
        service_link=str(service_link.network_address + 2),
        hosts=hosts,
    )


def spec_from_hosts(
    hosts: Sequence[tuple[str, Sequence[int]]],
    *,
    name: str = DEFAULT_LAB_NAME,
    drop: Iterable[str] = (),
    reject: Iterable[str] = (),
    nxdomain: Iterable[str] = (),
    private: Iterable[str] = (),
    privatelink: Iterable[str] = (),
    other_ca: Iterable[str] = (),
    dns: DnsMode = "ok",
    dns_timeout: bool = False,
    default_deny: bool = False,
    node_address: str = DEFAULT_NODE_ADDRESS,
) -> LabSpec:
    """Build a spec from `(name, ports)` pairs plus behaviour lists naming those hosts.

    A name listed twice gets the union of its ports. Every behaviour must name a host in
    `hosts`, and a host can be dropped, rejected or NXDOMAIN'd, but only one of them.
    """
    ports_by_host: dict[str, list[int]] = {}
    for raw_name, ports in hosts:
        host_name = normalise_host_name(raw_name)
        ports_by_host.setdefault(host_name, [])
        ports_by_host[host_name].extend(ports or (443,))

    def members(option: str, raw_names: Iterable[str]) -> set[str]:
        chosen: set[str] = set()
        for raw in raw_names:
            host_name = normalise_host_name(raw)
            if host_name not in ports_by_host:
                raise LabSpecError(f"{option}: host {host_name} is not in the lab")
            chosen.add(host_name)
        return chosen

    chosen_by_behaviour: list[tuple[Behaviour, set[str]]] = [
        ("drop", members("drop", drop)),
        ("reject", members("reject", reject)),
        ("nxdomain", members("nxdomain", nxdomain)),
    ]
    behaviours: dict[str, Behaviour] = {}
    for behaviour, chosen_names in chosen_by_behaviour:
        for host_name in sorted(chosen_names):
            if host_name in behaviours:
                raise LabSpecError(
                    f"{behaviour}: host {host_name} is already set to {behaviours[host_name]}"
                )
            behaviours[host_name] = behaviour
    private_names = members("private", private)
    privatelink_names = members("privatelink", privatelink)
    other_ca_names = members("other-ca", other_ca)
    lab_hosts = [
        LabHost(
            name=host_name,
            ports=tuple(ports),
            behaviour=behaviours.get(host_name, "open"),
            answer="private" if host_name in private_names else "public",
            privatelink=host_name in privatelink_names,
            ca="other" if host_name in other_ca_names else "lab",
        )
        for host_name, ports in ports_by_host.items()
    ]
    return LabSpec(
        name=name,
        hosts=lab_hosts,
        dns="drop" if dns_timeout else dns,
        default_deny=default_deny,
        node_address=node_address,
    )


def spec_to_dict(spec: LabSpec) -> dict[str, Any]:
    """JSON-ready form of a spec (the lab state keeps it, so status can describe each host)."""
    return {
        "name": spec.name,
        "hosts": [
            {
                "name": host.name,
                "ports": list(host.ports),
                "behaviour": host.behaviour,
                "answer": host.answer,
                "privatelink": host.privatelink,
                "ca": host.ca,
            }
            for host in spec.hosts
        ],
        "dns": spec.dns,
        "default_deny": spec.default_deny,
        "node_address": spec.node_address,
    }


def spec_from_dict(document: Mapping[str, Any]) -> LabSpec:
    """Inverse of `spec_to_dict`; `LabSpecError` when the document is not a spec."""
    try:
        hosts = [LabHost(**{**host, "ports": tuple(host["ports"])}) for host in document["hosts"]]
        return LabSpec(
            name=document["name"],
            hosts=hosts,
            dns=document["dns"],
            default_deny=bool(document["default_deny"]),
            node_address=document["node_address"],
        )
    except (KeyError, TypeError) as exc:
        raise LabSpecError(f"not a lab spec: {exc}") from exc
