"""`aksflight replicas`: how many model replicas a load needs, by the documented formula,
and with --cpu-cores/--memory-gb and a cluster, whether its free capacity holds them."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from aksflight.errors import UsageError
from rules.sizing import estimate_replicas


def _positive_float(flag: str) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag}: {text!r} is not a number") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"{flag}: must be above 0, got {text}")
        return value

    return parse


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--max-concurrent: {text!r} is not a whole number"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError("--max-concurrent: must be at least 1")
    return value


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "replicas",
        help="size model replicas: ceil(rps × request time / utilization / max concurrent)",
        description="Replica count for a target load, as Azure ML v1 documents it.",
    )
    parser.add_argument(
        "--rps", required=True, type=_positive_float("--rps"), help="requests per second to serve"
    )
    parser.add_argument(
        "--request-time",
        required=True,
        type=_positive_float("--request-time"),
        metavar="S",
        help="seconds one request takes in the model",
    )
    parser.add_argument(
        "--target-utilization",
        default=0.7,
        type=_positive_float("--target-utilization"),
        metavar="U",
        help="target utilization in (0, 1], or a percentage such as 70",
    )
    parser.add_argument(
        "--max-concurrent",
        default=1,
        type=_positive_int,
        metavar="C",
        help="replica_max_concurrent_requests (default 1)",
    )
    plan = parser.add_argument_group("capacity plan: does the cluster's free capacity hold them?")
    plan.add_argument(
        "--cpu-cores", type=_positive_float("--cpu-cores"), metavar="C", help="per replica"
    )
    plan.add_argument(
        "--memory-gb", type=_positive_float("--memory-gb"), metavar="GB", help="per replica"
    )
    plan.add_argument("--kubeconfig", type=Path, metavar="FILE", help="the cluster to plan for")
    plan.add_argument("--context", metavar="CTX", help="kubeconfig context")
    plan.add_argument(
        "--purpose",
        choices=["DevTest", "FastProd", "DenseProd"],
        default="FastProd",
        help="the cluster's purpose (DevTest: the router does not scale itself)",
    )
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    parser.set_defaults(handler=run)


def _capacity(args: argparse.Namespace, replicas: int) -> list[Any]:
    """Findings on whether the cluster's free CPU and memory hold `replicas`; [] when no
    resources were given."""
    if args.cpu_cores is None and args.memory_gb is None:
        if args.kubeconfig is not None or args.context is not None:
            raise UsageError("--kubeconfig/--context need --cpu-cores and --memory-gb")
        return []
    if args.cpu_cores is None or args.memory_gb is None:
        raise UsageError("--cpu-cores and --memory-gb go together")
    if args.kubeconfig is None and args.context is None:
        return []  # no cluster named: the needs alone
    from preflight.cluster_state import collect_snapshot
    from preflight.incluster.client import api_client
    from rules.cluster import ServicePlan, capacity_findings

    api = api_client(args.kubeconfig, args.context)
    snapshot = collect_snapshot(api, router_namespace="azureml", permissions=False)
    service = ServicePlan("model", "", replicas, args.cpu_cores, args.memory_gb)
    return capacity_findings(snapshot, [service], args.purpose)


def run(args: argparse.Namespace) -> int:
    from rules.errors import SizingError

    try:
        estimate = estimate_replicas(
            args.rps, args.request_time, args.target_utilization, args.max_concurrent
        )
    except SizingError as exc:
        raise UsageError(str(exc)) from None
    capacity = _capacity(args, estimate.replicas)
    failed = any(f.status.value == "fail" for f in capacity)
    if args.output == "json":
        document: dict[str, Any] = {
            "replicas": estimate.replicas,
            "concurrent_requests": estimate.concurrent_requests,
            "target_utilization": estimate.target_utilization,
            "max_concurrent": estimate.max_concurrent,
        }
        if args.cpu_cores is not None:
            document["needs"] = {
                "cpu_cores": estimate.replicas * args.cpu_cores,
                "memory_gb": estimate.replicas * args.memory_gb,
            }
            document["capacity"] = [
                {"id": f.check.id, "status": f.status.value, "reason": f.reason} for f in capacity
            ]
        print(json.dumps(document))
        return 1 if failed else 0
    else:
        print(
            f"{estimate.replicas} replicas: {args.rps:g} req/s × {args.request_time:g} s = "
            f"{estimate.concurrent_requests:g} concurrent requests, at "
            f"{estimate.target_utilization:.0%} utilization and {estimate.max_concurrent} "
            f"concurrent per replica"
        )
    if args.cpu_cores is not None:
        print(
            f"needs {estimate.replicas * args.cpu_cores:g} cores and "
            f"{estimate.replicas * args.memory_gb:g} GB ({args.cpu_cores:g} cores, "
            f"{args.memory_gb:g} GB per replica)"
        )
    for finding in capacity:
        print(f"{finding.status.value}: {finding.check.id}: {finding.reason}")
        if finding.status.value != "pass" and finding.remediation:
            print(f"  fix: {finding.remediation}")
    return 1 if failed else 0
