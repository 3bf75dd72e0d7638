"""`aksflight lab up|down|status|exec`: the lab from the command line.

`add_lab_parser(subparsers)` adds the `lab` command to an argparse tree; each leaf parser
sets `handler` to a function `(args) -> int`. A `LabError` becomes one line on stderr and
exit code 2. `python -m aksflight.lab` runs the same commands standalone.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from aksflight.lab.errors import LabError, LabSpecError
from aksflight.lab.lifecycle import (
    LabState,
    LabStatus,
    default_state_dir,
    down,
    exec_in_node,
    load_state,
    status,
    up,
)
from aksflight.lab.render import port_mode
from aksflight.lab.spec import DEFAULT_LAB_NAME, spec_from_hosts

EXIT_USAGE = 2
PlanHosts = Callable[[argparse.Namespace], Sequence[tuple[str, Sequence[int]]]]


def parse_host(text: str) -> tuple[str, tuple[int, ...]]:
    """`NAME[:PORT,PORT]` -> `(name, ports)`; ports default to 443."""
    name, _, port_text = text.partition(":")
    if not port_text:
        return name, (443,)
    ports: list[int] = []
    for part in port_text.split(","):
        if not part.strip().isdigit():
            raise LabSpecError(f"--host {text}: port {part!r} is not a number")
        ports.append(int(part))
    return name, tuple(ports)


def _add_common(parser: argparse.ArgumentParser, *, output: bool = True) -> None:
    parser.add_argument(
        "--name", default=DEFAULT_LAB_NAME, help=f"lab name (default {DEFAULT_LAB_NAME})"
    )
    parser.add_argument(
        "--state-dir", type=Path, help="state directory (default /run/aksflight/lab/NAME)"
    )
    if output:
        parser.add_argument("-o", "--output", choices=("table", "json"), default="table")


def add_lab_parser(subparsers: Any, *, plan_hosts: PlanHosts | None = None) -> Any:
    """Add `lab` with `up|down|status|exec` to `subparsers`; returns the `lab` parser.

    With `plan_hosts`, `lab up` also takes `-c/--config FILE` and adds the hosts that
    `plan_hosts(args)` returns (the app's config loader supplies it).
    """
    lab = subparsers.add_parser(
        "lab",
        help="a simulated AKS node behind a firewall, with real DNS and TLS (root, Linux)",
        description="Build, inspect and tear down the network lab: network namespaces, a "
        "dnsmasq resolver, TLS endpoints signed by a lab CA, and an nftables firewall.",
    )
    commands = lab.add_subparsers(dest="lab_command", metavar="ACTION", required=True)

    up_parser = commands.add_parser("up", help="build a lab (replacing one of the same name)")
    _add_common(up_parser)
    up_parser.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="NAME[:PORT,PORT]",
        help="a host to serve (repeatable; ports default to 443)",
    )
    if plan_hosts is not None:
        up_parser.add_argument("-c", "--config", help="also serve every host this config needs")
    for flag, what in (
        ("--drop", "the firewall drops traffic to NAME (connect timeout)"),
        ("--reject", "the firewall rejects traffic to NAME (connection refused)"),
        ("--nxdomain", "DNS answers NXDOMAIN for NAME"),
        ("--private", "DNS answers NAME with a private address"),
        ("--privatelink", "DNS answers NAME through a privatelink CNAME, private address"),
        ("--other-ca", "NAME's certificate comes from a CA the client does not trust"),
    ):
        up_parser.add_argument(flag, action="append", default=[], metavar="NAME", help=what)
    up_parser.add_argument(
        "--dns-timeout", action="store_true", help="the resolver never answers (DNS timeout)"
    )
    up_parser.add_argument(
        "--default-deny",
        action="store_true",
        help="the firewall drops all egress but DNS until an allowlist is applied",
    )
    up_parser.add_argument("--node-address", default="10.240.0.4", help="the node's address")
    up_parser.set_defaults(handler=_guarded(_run_up, plan_hosts))

    down_parser = commands.add_parser("down", help="stop everything and delete the namespaces")
    _add_common(down_parser)
    down_parser.set_defaults(handler=_guarded(_run_down, None))

    status_parser = commands.add_parser("status", help="show a lab (exit 1 when not running)")
    _add_common(status_parser)
    status_parser.set_defaults(handler=_guarded(_run_status, None))

    exec_parser = commands.add_parser(
        "exec", help="run a command in the lab's node namespace (after --)"
    )
    _add_common(exec_parser, output=False)
    exec_parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND")
    exec_parser.set_defaults(handler=_guarded(_run_exec, None))
    return lab


Runner = Callable[[argparse.Namespace, PlanHosts | None], int]


def _guarded(runner: Runner, plan_hosts: PlanHosts | None) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        try:
            return runner(args, plan_hosts)
        except LabError as exc:
            print(f"aksflight lab: {exc}", file=sys.stderr)
            return EXIT_USAGE

    return handler


def _run_up(args: argparse.Namespace, plan_hosts: PlanHosts | None) -> int:
    hosts: list[tuple[str, Sequence[int]]] = [parse_host(text) for text in args.host]
    if plan_hosts is not None and getattr(args, "config", None):
        hosts.extend(plan_hosts(args))
    if not hosts:
        raise LabSpecError("lab up needs at least one --host")
    spec = spec_from_hosts(
        hosts,
        name=args.name,
        drop=args.drop,
        reject=args.reject,
        nxdomain=args.nxdomain,
        private=args.private,
        privatelink=args.privatelink,
        other_ca=args.other_ca,
        dns_timeout=args.dns_timeout,
        default_deny=args.default_deny,
        node_address=args.node_address,
    )
    state = up(spec, args.state_dir)
    if args.output == "json":
        print(json.dumps(state.to_dict(), indent=2))
    else:
        _print_state(state, _console())
    return 0


def _run_down(args: argparse.Namespace, _: PlanHosts | None) -> int:
    teardown = down(args.name, args.state_dir)
    if args.output == "json":
        print(json.dumps(teardown.to_dict(), indent=2))
    elif teardown.namespaces_removed or teardown.processes_stopped:
        print(
            f"lab {teardown.name}: stopped {len(teardown.processes_stopped)} processes, "
            f"removed {', '.join(teardown.namespaces_removed) or 'no namespaces'}"
        )
    else:
        print(f"lab {teardown.name}: nothing to remove")
    return 0


def _run_status(args: argparse.Namespace, _: PlanHosts | None) -> int:
    lab_status = status(args.name, args.state_dir)
    if args.output == "json":
        print(json.dumps(lab_status.to_dict(), indent=2))
    else:
        _print_status(lab_status, _console())
    return 0 if lab_status.running else 1


def _run_exec(args: argparse.Namespace, _: PlanHosts | None) -> int:
    argv = list(args.argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise LabSpecError("lab exec needs a command after --")
    state = load_state(args.name, args.state_dir)
    return exec_in_node(state, argv, capture=False).returncode


def _console() -> Console:
    """A terminal gets its own width; logs and pipes get room for long host names."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)
    return console


def _dns_answer(state: LabState, host: dict[str, Any]) -> str:
    if state.spec["dns"] == "drop":
        return "no answer (resolver silent)"
    if host["behaviour"] == "nxdomain":
        return "NXDOMAIN"
    address = state.hosts[host["name"]]
    if host["privatelink"]:
        return f"CNAME {state.dns_names[host['name']]} -> {address}"
    return f"A {address}"


def _firewall(state: LabState, host: dict[str, Any]) -> str:
    behaviour = str(host["behaviour"])
    if behaviour in ("drop", "reject"):
        return behaviour
    return "default deny" if state.spec["default_deny"] else "open"


def _certificate(host: dict[str, Any]) -> str:
    if not any(port_mode(int(port)) == "https" for port in host["ports"]):
        return "-"
    return "untrusted CA" if host["ca"] == "other" else "lab CA"


def hosts_table(state: LabState) -> Table:
    """One row per host: its address, ports, what DNS answers, the firewall, the CA."""
    table = Table(title=f"lab {state.name}", title_justify="left")
    for column in ("host", "ports", "DNS answer", "firewall", "certificate"):
        table.add_column(column, overflow="fold")
    for host in state.spec["hosts"]:
        table.add_row(
            host["name"],
            ",".join(str(p) for p in host["ports"]),
            _dns_answer(state, host),
            _firewall(state, host),
            _certificate(host),
        )
    return table


def _print_state(state: LabState, console: Console) -> None:
    console.print(hosts_table(state))
    console.print(
        f"node {state.node_address} in namespace {state.node_namespace}, "
        f"nameserver {state.nameserver}, CA bundle {state.ca_bundle}, up in {state.up_seconds} s",
        highlight=False,
    )
    if state.spec["default_deny"]:
        console.print(
            "default deny: only DNS leaves the node until an allowlist is applied "
            "(chain allowlist of table inet aksflight, see docs/lab.md)",
            highlight=False,
        )
    state_dir = Path(state.state_dir)
    where = "" if state_dir == default_state_dir(state.name) else f" --state-dir {state_dir}"
    console.print(
        f"run a command on the node: aksflight lab exec --name {state.name}{where} -- COMMAND",
        highlight=False,
    )


def _print_status(lab_status: LabStatus, console: Console) -> None:
    if lab_status.state is not None:
        console.print(hosts_table(lab_status.state))
    word = "running" if lab_status.running else "not running"
    console.print(f"lab {lab_status.name}: {word}")
    if lab_status.missing_namespaces and lab_status.state is not None:
        console.print(f"missing namespaces: {', '.join(lab_status.missing_namespaces)}")
    for role, alive in lab_status.processes.items():
        console.print(f"{role}: {'alive' if alive else 'dead'}")
    if lab_status.state is None and lab_status.namespaces:
        console.print(f"leftover namespaces (run lab down): {', '.join(lab_status.namespaces)}")


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m aksflight.lab up|down|status|exec ...`: the lab without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="aksflight")
    add_lab_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["lab", *(sys.argv[1:] if argv is None else argv)])
    return int(args.handler(args))
