"""`aksflight router status`: the router's pods, their size, their figures, the last decisions.

    aksflight router status [--namespace NS] [--deployment NAME] [--kubeconfig F] [--context C]
    aksflight router status --url http://127.0.0.1:8080      (one router; all, if coordinator)
    aksflight router status --fleet DIR                       (a local router fleet)

Add `-o json` for the figures as data. Exit 1 when the status cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aksflight.errors import UsageError


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "router",
        help="the router's own state: pods, size, routing time, CPU, scaling decisions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    status = actions.add_parser("status", help="router pods, their size, figures and decisions")
    source = status.add_mutually_exclusive_group()
    source.add_argument("--url", metavar="URL", help="a router's base URL")
    source.add_argument("--fleet", metavar="DIR", help="a local router fleet's directory")
    status.add_argument("--namespace", default="azureml", help="the router's namespace")
    status.add_argument("--deployment", default="aksflight-router", help="the router Deployment")
    status.add_argument("--container", default="router", help="the router's container")
    status.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file")
    status.add_argument("--context", metavar="CTX", help="kubeconfig context")
    status.add_argument("-o", "--output", choices=("table", "json"), default="table")
    status.set_defaults(handler=_status)


def _status(args: argparse.Namespace) -> int:
    from router.errors import RouterError
    from router.status import cluster_status, fleet_status, render, url_status

    if args.url is not None and not args.url.startswith(("http://", "https://")):
        raise UsageError(f"router status: --url must be an http(s) URL, not {args.url!r}")
    try:
        if args.url:
            status = url_status(args.url)
        elif args.fleet:
            status = fleet_status(Path(args.fleet))
        else:
            status = cluster_status(_api(args), args.namespace, args.deployment, args.container)
    except RouterError as exc:
        print(f"aksflight: {exc}", file=sys.stderr)
        return 1
    if args.output == "json":
        print(json.dumps(status, indent=2))
    else:
        print(render(status))
    return 0


def _api(args: argparse.Namespace) -> Any:
    from router.kube import KubernetesApi

    kubeconfig = Path(args.kubeconfig) if args.kubeconfig else None
    if kubeconfig is not None and not kubeconfig.is_file():
        raise UsageError(f"router status: --kubeconfig {kubeconfig}: no such file")
    return KubernetesApi.connect(False, kubeconfig, args.context)
