"""`aksflight replicas`: how many model replicas a load needs, by the documented formula."""

from __future__ import annotations

import argparse
import json
import math
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
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rules.errors import SizingError

    try:
        estimate = estimate_replicas(
            args.rps, args.request_time, args.target_utilization, args.max_concurrent
        )
    except SizingError as exc:
        raise UsageError(str(exc)) from None
    if args.output == "json":
        print(
            json.dumps(
                {
                    "replicas": estimate.replicas,
                    "concurrent_requests": estimate.concurrent_requests,
                    "target_utilization": estimate.target_utilization,
                    "max_concurrent": estimate.max_concurrent,
                }
            )
        )
    else:
        print(
            f"{estimate.replicas} replicas: {args.rps:g} req/s × {args.request_time:g} s = "
            f"{estimate.concurrent_requests:g} concurrent requests, at "
            f"{estimate.target_utilization:.0%} utilization and {estimate.max_concurrent} "
            f"concurrent per replica"
        )
    return 0
