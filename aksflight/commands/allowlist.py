"""`aksflight allowlist`: firewall rules, in the format of the firewall you run.

The rules come from the same requirements the preflight checks. `--resolve` (nftables)
looks the names up now, through the config's nameservers when it has any.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import dns.exception
import dns.resolver

from aksflight.commands.common import add_config_flags, load_requirements, parse_phases
from aksflight.errors import UsageError
from reports.allowlist import (
    FORMATS,
    AllowlistError,
    RenderOptions,
    Target,
    build_allowlist,
    render_allowlist,
)
from rules.names import check_cidr, is_ip_address

Resolver = Callable[[str], tuple[str, ...]]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "allowlist",
        help="firewall rules for the requirements, in your firewall's format",
        description="Generate the egress rules the deployment needs, and nothing more.",
    )
    add_config_flags(parser)
    parser.add_argument(
        "-f",
        "--format",
        required=True,
        choices=FORMATS,
        metavar="FORMAT",
        help="one of: " + ", ".join(FORMATS),
    )
    parser.add_argument(
        "--source-cidr",
        action="append",
        default=[],
        metavar="CIDR",
        help="a node subnet (repeatable; default: network.source_cidrs)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUT",
        help="write to this file (default: standard output)",
    )
    parser.add_argument(
        "--fqdn-tag",
        action="store_true",
        help="also allow the AzureKubernetesService FQDN tag (aks-base set)",
    )
    parser.add_argument(
        "--resolve", action="store_true", help="nftables: resolve the names now (the sets go stale)"
    )
    parser.add_argument(
        "--nameserver",
        action="append",
        default=[],
        metavar="IP",
        help="--resolve asks this DNS server (default: network.nameservers, "
        "else the system resolver)",
    )
    parser.add_argument(
        "--group-name",
        default="aksflight",
        help="Azure: rule collection group name (default: aksflight)",
    )
    parser.add_argument(
        "--group-priority",
        type=int,
        default=500,
        help="Azure: rule collection group priority, 100-65000 (default: 500)",
    )
    parser.add_argument(
        "--nsg-priority",
        type=int,
        default=1000,
        help="nsg: priority of the first rule, 100-4096 (default: 1000)",
    )
    parser.add_argument(
        "--namespace", default="azureml", help="cilium: namespace of the policy (default: azureml)"
    )
    parser.set_defaults(handler=run)


def _source_cidrs(flags: Sequence[str], configured: Sequence[str]) -> list[str]:
    for value in flags:
        problem = check_cidr(value)
        if problem:
            raise UsageError(f"--source-cidr: invalid CIDR {value!r}: {problem}")
    return list(flags or configured)


def dns_resolver(nameservers: Sequence[str], *, port: int = 53, timeout: float = 3.0) -> Resolver:
    """A resolver for `--resolve`: A and AAAA answers; no answer gives an empty tuple."""
    if nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = list(nameservers)
        resolver.port = port
    else:
        resolver = dns.resolver.Resolver()
    resolver.lifetime = timeout

    def resolve(host: str) -> tuple[str, ...]:
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = resolver.resolve(host, rdtype)
            except (
                dns.resolver.NXDOMAIN,
                dns.resolver.NoAnswer,
                dns.resolver.NoNameservers,
                dns.exception.Timeout,
            ):
                continue  # the name gets no rule; render_allowlist warns about it
            found.extend(record.to_text() for record in answer)
        return tuple(a for a in found if is_ip_address(a))

    return resolve


def resolve_all(hosts: Sequence[str], resolver: Resolver) -> dict[str, tuple[str, ...]]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(zip(hosts, pool.map(resolver, hosts), strict=True))


def write_output(text: str, path: Path | None) -> None:
    """Standard output, or the whole file at once (a temporary file renamed into place)."""
    if path is None:
        sys.stdout.write(text)
        return
    directory = path.parent if str(path.parent) else Path()
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as a plain open() would create it
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        raise UsageError(f"{path}: cannot write ({exc.strerror})") from None


def run(args: argparse.Namespace, resolver: Resolver | None = None) -> int:
    config, requirements = load_requirements(args)
    phases = parse_phases(args.phase)
    sources = _source_cidrs(args.source_cidr, config.network.source_cidrs)
    if args.resolve and args.format != "nftables":
        raise UsageError("--resolve: only the nftables format uses resolved addresses")
    if args.nameserver and not args.resolve:
        raise UsageError("--nameserver: only used with --resolve")
    for server in args.nameserver:
        if not is_ip_address(server):
            raise UsageError(f"--nameserver: not an IP address: {server!r}")
    title = (
        f"aksflight allowlist for cluster {config.cluster.name} "
        f"({config.cloud} cloud, {config.region})"
    )
    try:
        allowlist = build_allowlist(
            requirements,
            sources,
            phases=phases,
            dns_servers=config.network.nameservers,
            fqdn_tag=args.fqdn_tag,
            title=title,
        )
        resolved = None
        resolved_at = ""
        if args.resolve:
            hosts = [
                r.destination.value for r in allowlist.rules if r.destination.kind is Target.FQDN
            ]
            lookup = resolver or dns_resolver(args.nameserver or config.network.nameservers)
            resolved = resolve_all(list(dict.fromkeys(hosts)), lookup)
            resolved_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        options = RenderOptions(
            group_name=args.group_name,
            group_priority=args.group_priority,
            nsg_priority=args.nsg_priority,
            namespace=args.namespace,
            resolved=resolved,
            resolved_at=resolved_at,
        )
        rendered = render_allowlist(args.format, allowlist, options)
    except AllowlistError as exc:
        raise UsageError(str(exc)) from None
    write_output(rendered.text, args.output)
    for warning in rendered.warnings:
        print(f"aksflight: warning: {warning}", file=sys.stderr)
    return 0
