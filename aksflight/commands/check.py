"""`aksflight check`: run the plan's probes, judge them, report; exit 1 when a check fails."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from aksflight.commands.common import add_config_flags, load_plan
from aksflight.errors import UsageError
from aksflight.output import console_options, write_output
from rules.model import Evaluation, Status

FORMATS = ("table", "json", "junit", "markdown", "html")
# The probe image built from the repository's Dockerfile; push it to a registry the nodes
# can pull from and pass --image (docs/in-cluster.md).
DEFAULT_IMAGE = "aksflight:0.1.0"
DEFAULT_TIMEOUT_S = 120.0


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--timeout: {text!r} is not a number") from None
    if not math.isfinite(value) or not 0 < value <= 300:
        raise argparse.ArgumentTypeError("--timeout: seconds in (0, 300]")
    return value


def add_probe_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=_timeout,
        default=3.0,
        metavar="S",
        help="per-check timeout in seconds (default 3)",
    )
    parser.add_argument(
        "--nameserver",
        action="append",
        default=[],
        metavar="IP",
        help="ask this DNS server (repeatable; ip or ip:port); default: the "
        "config's network.nameservers, else the system resolver",
    )
    parser.add_argument(
        "--ca-bundle", type=Path, metavar="PEM", help="trust these CAs instead of the system store"
    )
    parser.add_argument("--proxy", metavar="URL", help="send HTTP checks through this proxy")
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        metavar="FILE",
        help="for the Kubernetes API checks (default: KUBECONFIG, ~/.kube/config)",
    )
    parser.add_argument("--context", metavar="CTX", help="kubeconfig context")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=64,
        metavar="N",
        help="checks in flight at once (default 64)",
    )


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "check",
        help="probe DNS and egress phase by phase; say what will break",
        description="Run the plan's DNS, TCP, TLS, HTTP and Kubernetes checks concurrently in "
        "dependency order. Exit 0: no failure; 1: a check failed; 2: bad input.",
    )
    add_config_flags(parser)
    add_probe_flags(parser)
    parser.add_argument("-o", "--output", choices=FORMATS, default="table")
    parser.add_argument("--out", type=Path, metavar="FILE", help="write the report to FILE")
    parser.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="probe later phases even when an earlier one breaks, to find "
        "every missing rule in one run",
    )
    parser.add_argument("--no-progress", action="store_true", help="no live progress display")
    add_in_cluster_flags(parser)
    parser.set_defaults(handler=run)


def _in_cluster_timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--in-cluster-timeout: {text!r} is not a number"
        ) from None
    if not math.isfinite(value) or not 10 <= value <= 3600:
        raise argparse.ArgumentTypeError("--in-cluster-timeout: seconds in [10, 3600]")
    return value


def add_in_cluster_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("in-cluster (docs/in-cluster.md)")
    group.add_argument(
        "--in-cluster",
        action="store_true",
        help="also run the checks from a Job on every node pool and compare",
    )
    group.add_argument(
        "--node-pool",
        action="append",
        default=[],
        metavar="P",
        help="only these node pools (repeatable; default all)",
    )
    group.add_argument("--per-node", action="store_true", help="one Job per node, not per pool")
    group.add_argument(
        "--image",
        default=DEFAULT_IMAGE,
        metavar="IMAGE",
        help=f"the probe image (default {DEFAULT_IMAGE}; mirror it for air-gapped registries)",
    )
    group.add_argument(
        "--in-cluster-timeout",
        type=_in_cluster_timeout,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"bound on the whole in-cluster run (default {DEFAULT_TIMEOUT_S:g})",
    )


def probe_options(args: argparse.Namespace, nameservers: list[str]) -> Any:
    from preflight.errors import PreflightError
    from preflight.options import ProbeOptions

    try:
        return ProbeOptions(
            nameservers=args.nameserver or nameservers,
            timeout=args.timeout,
            ca_bundle=args.ca_bundle,
            proxy=args.proxy,
            kubeconfig=args.kubeconfig,
            context=args.context,
            concurrency=args.concurrency,
        )
    except PreflightError as exc:
        raise UsageError(str(exc)) from None


def run_checks(plan: Any, options: Any, *, progress: bool) -> Evaluation:
    """Probe, then judge: the one path every command that checks goes through."""
    from preflight import eventloop
    from preflight.progress import run_plan_with_progress
    from rules.evaluate import evaluate

    result = eventloop.run(run_plan_with_progress(plan, options, enabled=progress))
    return evaluate(plan, result.observations, result.duration_s)


def exit_code(evaluation: Evaluation, *, strict: bool) -> int:
    if evaluation.verdict is Status.FAIL:
        return 1
    if strict and evaluation.verdict is Status.WARN:
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    config, plan = load_plan(args)
    options = probe_options(args, list(config.network.nameservers))
    if args.in_cluster:
        return run_in_cluster(args, config, plan, options)
    if args.node_pool or args.per_node:
        raise UsageError("--node-pool and --per-node need --in-cluster")
    show_progress = not args.no_progress and args.output != "json" and sys.stderr.isatty()
    evaluation = run_checks(plan, options, progress=show_progress)
    from reports import CHECK_FORMATS

    text = CHECK_FORMATS[args.output](evaluation, plan, console_options(args.out))
    write_output(text, args.out, sys.stdout)
    return exit_code(evaluation, strict=args.strict)


def _progress_printer(enabled: bool) -> Any:
    if not enabled:
        return None

    def show(message: str) -> None:
        print(f"aksflight: {message}", file=sys.stderr, flush=True)

    return show


def _cluster_state(api: Any, config: Any, namespace: str) -> list[Any]:
    """The cluster-state findings; a state that cannot be read is a warning, not a stop."""
    from preflight.cluster_state import ClusterStateError, collect_snapshot
    from rules.cluster import cluster_findings
    from rules.model import Check, CheckKind, Finding, Phase

    try:
        snapshot = collect_snapshot(api, router_namespace=namespace)
    except ClusterStateError as exc:
        check = Check(
            id="cluster:state",
            kind=CheckKind.CLUSTER,
            phase=Phase.ROUTER_INSTALL,
            target="cluster",
            phases=(Phase.ROUTER_INSTALL,),
            purpose="the cluster's state can be read",
        )
        return [
            Finding(
                check,
                Status.WARN,
                str(exc),
                remediation="grant list nodes, pods and HPAs, or run with other credentials",
            )
        ]
    return cluster_findings(snapshot, config)


def _column(result: Any) -> Any:
    from reports.comparison import Column

    outcome = result.outcome
    target = outcome.target
    pod = outcome.pod
    return Column(
        name=f"node {target.node}" if target.node else f"pool {target.pool}",
        where="node" if target.node else "pool",
        evaluation=result.evaluation,
        problem=result.problem,
        node=(outcome.report.node if outcome.report else "") or (pod.node if pod else ""),
        pod=pod.name if pod else "",
    )


def run_in_cluster(args: argparse.Namespace, config: Any, plan: Any, options: Any) -> int:
    """Check from here, then from a Job on every node pool; compare; delete what was made."""
    from preflight.incluster import (
        Launcher,
        RunRequest,
        api_client,
        in_cluster_plan,
        judge_outcome,
        launch_spec,
        list_targets,
    )
    from reports.comparison import COMPARISON_FORMATS, Column, Comparison

    if args.output not in COMPARISON_FORMATS:
        raise UsageError(f"--in-cluster: -o is {' or '.join(COMPARISON_FORMATS)}")
    try:
        catalogues = [path.read_text() for path in args.catalogue]
        config_text = args.config.read_text()
    except OSError as exc:
        raise UsageError(f"{exc.filename}: cannot read ({exc.strerror})") from None
    api = api_client(args.kubeconfig, args.context)
    incluster = in_cluster_plan(plan)
    targets = list_targets(api, args.node_pool, args.per_node)
    request = RunRequest(
        image=args.image,
        config_text=config_text,
        catalogue_texts=catalogues,
        phases=args.phase,
        pools=args.node_pool,
        per_node=args.per_node,
        timeout_s=args.in_cluster_timeout,
        probe_timeout_s=args.timeout,
        keep_going=args.keep_going,
        proxy=args.proxy,
    )
    spec = launch_spec(request, incluster, targets)
    show = not args.no_progress and args.output != "json" and sys.stderr.isatty()
    here = run_checks(plan, options, progress=show)
    cluster = _cluster_state(api, config, options.namespace)
    # A stuck pod (image pull, unschedulable) is final after a quarter of the run, at most 15 s.
    grace = min(15.0, args.in_cluster_timeout / 4)
    run = Launcher(api, spec, stuck_grace_s=grace, on_progress=_progress_printer(show)).run()
    results = [judge_outcome(incluster, outcome) for outcome in run.outcomes]
    comparison = Comparison(
        plan=incluster,
        columns=(Column("here", "runner", here), *(_column(r) for r in results)),
        cluster=tuple(cluster),
    )
    for leftover in run.cleanup.remaining:
        print(f"aksflight: not deleted: {leftover}", file=sys.stderr)
    text = COMPARISON_FORMATS[args.output](comparison, console_options(args.out))
    write_output(text, args.out, sys.stdout)
    verdict = comparison.verdict
    if verdict is Status.FAIL or (args.strict and verdict is Status.WARN):
        return 1
    return 0
