"""`aksflight probe`: what a probe pod runs — the plan's checks from where it stands, plus
the pod-network checks, printed as one line of JSON observations (no verdicts: the
launcher judges them with the same rules as `aksflight check`)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

from aksflight.commands.check import add_probe_flags, probe_options
from aksflight.commands.common import add_config_flags, load_plan
from aksflight.errors import UsageError


def _port(flag: str) -> Any:
    def parse(text: str) -> int:
        if not text.isdigit() or not 1 <= int(text) <= 65535:
            raise argparse.ArgumentTypeError(f"{flag}: {text!r} is not a port (1-65535)")
        return int(text)

    return parse


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise argparse.ArgumentTypeError(f"--peers: {text!r} is not a count (1-10000)")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--linger: {text!r} is not a number") from None
    if not math.isfinite(value) or not 0 <= value <= 600:
        raise argparse.ArgumentTypeError("--linger: seconds in [0, 600]")
    return value


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "probe",
        help="(inside a probe pod) run the checks here and print observations as JSON",
        description="Run the plan's checks from here and print one line of JSON "
        "observations. `aksflight check --in-cluster` runs this in a Job on every node pool.",
    )
    add_config_flags(parser)
    add_probe_flags(parser)
    parser.add_argument(
        "--namespace",
        default=os.environ.get("POD_NAMESPACE", "azureml"),
        metavar="NS",
        help="namespace the Kubernetes access checks ask about (default: the pod's own)",
    )
    parser.add_argument("--keep-going", action="store_true", help="as for check")
    peers = parser.add_argument_group("pod-network checks (peer:router, peer:model-pods)")
    peers.add_argument(
        "--peer-selector", metavar="LABELS", help="label selector of the run's probe pods"
    )
    peers.add_argument("--peers", type=_count, default=1, metavar="N", help="probe pods in the run")
    peers.add_argument("--router-port", type=_port("--router-port"), default=8080, metavar="P")
    peers.add_argument("--model-port", type=_port("--model-port"), default=5001, metavar="P")
    peers.add_argument(
        "--listen",
        default="0.0.0.0",  # noqa: S104 (the pod's peers connect to its pod IP)
        metavar="ADDR",
        help="address to listen on for the peers (default all)",
    )
    peers.add_argument(
        "--linger",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="wait at most this long for the peers to test this pod (default 30)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from preflight.incluster.plan import in_cluster_plan
    from preflight.incluster.probe import PeerSettings, probe, where_from_env
    from preflight.incluster.wire import dump_report

    _, plan = load_plan(args)
    options = probe_options(args, [])  # the pod's own resolver (CoreDNS), not the config's
    if args.namespace != options.namespace:
        from dataclasses import replace

        from preflight.errors import PreflightError

        try:
            options = replace(options, namespace=args.namespace)
        except PreflightError as exc:
            raise UsageError(str(exc)) from None
    peers = None
    if args.peer_selector:
        if args.router_port == args.model_port:
            raise UsageError("--router-port and --model-port must differ")
        peers = PeerSettings(
            selector=args.peer_selector,
            expected=args.peers,
            namespace=args.namespace,
            listen=args.listen,
            router_port=args.router_port,
            model_port=args.model_port,
            linger_s=args.linger,
        )
    try:
        report = probe(in_cluster_plan(plan), options, where_from_env(os.environ), peers)
    except OSError as exc:  # the listener's port is taken or the address is not ours
        raise UsageError(f"--listen {args.listen}: cannot listen ({exc.strerror})") from None
    sys.stdout.write(dump_report(report) + "\n")
    sys.stdout.flush()
    return 0
