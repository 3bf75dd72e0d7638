"""`aksflight check`: run the plan's probes, judge them, report; exit 1 when a check fails."""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from pathlib import Path
from typing import Any

from aksflight.commands.common import add_config_flags, load_plan
from aksflight.errors import UsageError
from aksflight.output import console_options, write_output
from rules.model import Evaluation, Status

FORMATS = ("table", "json", "junit", "markdown", "html")


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
    parser.set_defaults(handler=run)


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
    from preflight.progress import run_plan_with_progress
    from rules.evaluate import evaluate

    result = asyncio.run(run_plan_with_progress(plan, options, enabled=progress))
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
    show_progress = not args.no_progress and args.output != "json" and sys.stderr.isatty()
    evaluation = run_checks(plan, options, progress=show_progress)
    from reports import CHECK_FORMATS

    text = CHECK_FORMATS[args.output](evaluation, plan, console_options(args.out))
    write_output(text, args.out, sys.stdout)
    return exit_code(evaluation, strict=args.strict)
