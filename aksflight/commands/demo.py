"""`aksflight demo`: the whole story on this machine, with nothing from Azure.

1. As root on Linux it builds the network lab for the shipped `lab.yaml` environment with
   a locked-down firewall (storage dropped, the registry rejected), runs the preflight
   inside the simulated node, and shows which phase breaks and what to open. Where
   namespaces cannot be made, it says why and shows the offline plan instead.
2. Then it deploys the scikit-learn example (a v1 `score.py`) to the local target with the
   documented default configuration: the router and a model-server replica run as
   processes here; it prints the state, the scoring URI and the key, and scores one request
   with a plain HTTP client. They keep running until `aksflight local stop`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console

DEMO_LAB = "afdemo"
DROPPED = "labstorage01.blob.core.windows.net"
REJECTED = "labacr01.azurecr.io"


def example_path(name: str) -> Path:
    return Path(str(resources.files("aksflight").joinpath("examples", name)))


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        help="the lab story: a locked-down network, the preflight naming what is missing",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out", type=Path, default=Path("out"), help="where to write the reports (default ./out)"
    )
    parser.add_argument(
        "--no-deploy",
        action="store_true",
        help="stop after the network story; do not deploy the example locally",
    )
    parser.set_defaults(handler=run)


def lab_unavailable() -> str | None:
    """Why the lab cannot run here, or None when it can."""
    if sys.platform != "linux":
        return "the lab needs Linux network namespaces"
    if os.geteuid() != 0:
        return "the lab needs root to create network namespaces"
    missing = [tool for tool in ("ip", "nft", "dnsmasq") if shutil.which(tool) is None]
    if missing:
        return f"the lab needs {', '.join(missing)} (Debian: iproute2, nftables, dnsmasq-base)"
    return None


def _plan_fallback(console: Console, reason: str) -> int:
    from aksflight.cli import main as cli_main

    console.print(f"[yellow]aksflight demo: {reason}; showing the offline plan instead.[/]")
    return cli_main(["plan", "-c", str(example_path("lab.yaml")), "-o", "table"])


def _deploy_locally(console: Console) -> int:
    """The v1 story's end: a real model behind the router, scored by a plain HTTP client."""
    from deployer.errors import DeployerError
    from deployer.local.demo import demo_deploy

    console.rule("[bold]aksflight deploy --target local: the scikit-learn example")
    try:
        result = demo_deploy(example_path("sklearn"), say=console.print)
    except DeployerError as exc:
        console.print(f"[red]aksflight demo: the local deployment failed: {exc}[/]")
        return 1
    console.print(
        "\nScore it yourself:\n"
        f"  curl -s -H 'Authorization: Bearer {result.key}' -H 'Content-Type: application/json'"
        f" -d '{{\"data\": [[5.1, 3.5, 1.4, 0.2]]}}' {result.scoring_uri}\n"
        "Stop the router and the replicas with: aksflight local stop",
        markup=False,
        highlight=False,
    )
    return 0


def _check_in_lab(state: Any, config: Path, out: Path, console: Console) -> int:
    from aksflight.lab.lifecycle import exec_in_node

    base = [
        sys.executable,
        "-m",
        "aksflight",
        "check",
        "-c",
        str(config),
        "--nameserver",
        state.nameserver,
        "--ca-bundle",
        state.ca_bundle,
        "--timeout",
        "2",
        "--no-progress",
    ]
    html = out / "preflight.html"
    exec_in_node(state, [*base, "--keep-going", "-o", "html", "--out", str(html)])
    columns = {"COLUMNS": str(console.width)}
    result = exec_in_node(state, [*base, "-o", "table"], columns, capture=True)
    console.print(result.stdout, end="", markup=False, highlight=False)
    if result.stderr:
        console.print(result.stderr, end="", markup=False, highlight=False)
    console.print(
        f"\nThe same run with --keep-going (every missing rule, not just the first "
        f"break) as one HTML page: {html}"
    )
    return int(result.returncode)


def run(args: argparse.Namespace) -> int:
    console = Console()
    reason = lab_unavailable()
    if reason:
        _plan_fallback(console, reason)
    else:
        _lab_story(args, console)
    return 0 if args.no_deploy else _deploy_locally(console)


def _lab_story(args: argparse.Namespace, console: Console) -> None:
    from aksflight.commands.lab import plan_hosts
    from aksflight.lab.cli import hosts_table
    from aksflight.lab.errors import LabError
    from aksflight.lab.lifecycle import down, up
    from aksflight.lab.spec import spec_from_hosts

    config = example_path("lab.yaml")
    args.out.mkdir(parents=True, exist_ok=True)
    console.rule("[bold]aksflight demo: an AKS node behind a locked-down firewall")
    console.print(
        f"Environment {config.name}: the v1 router and a token-auth service in eastus.\n"
        f"The lab's firewall drops {DROPPED} and rejects {REJECTED}; DNS and TLS are real "
        "(dnsmasq, TLS endpoints signed by a lab CA, nftables).\n"
    )
    hosts = plan_hosts(argparse.Namespace(config=config))
    try:
        state = up(spec_from_hosts(hosts, name=DEMO_LAB, drop=[DROPPED], reject=[REJECTED]))
    except LabError as exc:
        _plan_fallback(console, f"the lab did not start ({exc})")
        return
    try:
        console.print(hosts_table(state))
        console.rule("[bold]aksflight check, run inside the simulated node")
        code = _check_in_lab(state, config, args.out, console)
        console.print(
            f"\nExit code {code}: in CI this stops the pipeline before a deployment the "
            "network will not allow. `aksflight allowlist -c CONFIG -f FORMAT` writes the "
            "firewall rules that would fix it."
        )
    finally:
        down(DEMO_LAB)
