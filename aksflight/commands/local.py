"""`aksflight local stop|status`: the local target's background router and replicas.

`stop` ends the router and every local replica; the services stay registered and come
back with the next `aksflight deploy`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "local",
        help="stop (or show) the local target's router and replicas",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    stop = actions.add_parser("stop", help="stop the local router and every local replica")
    stop.set_defaults(handler=_stop)
    status = actions.add_parser("status", help="is the local router running, and where")
    status.add_argument("-o", "--output", choices=("table", "json"), default="table")
    status.set_defaults(handler=_status)


def _stop(args: argparse.Namespace) -> int:
    from deployer.local.target import LocalTarget

    was_running = LocalTarget().stop()
    print("stopped the local router and its replicas" if was_running else "nothing was running")
    return 0


def _status(args: argparse.Namespace) -> int:
    from deployer.local.target import LocalTarget

    target = LocalTarget()
    pid = target.supervisor_pid()
    services = [info.name for info in target.list()]
    data: dict[str, Any] = {
        "running": pid is not None,
        "router": target.base_url if pid is not None else None,
        "services": services,
        "state_dir": str(target.layout.root),
    }
    if args.output == "json":
        print(json.dumps(data, indent=2))
    else:
        print(f"router {'running at ' + str(data['router']) if pid else 'stopped'}")
        print(f"services: {', '.join(services) or '(none)'}")
        print(f"state: {data['state_dir']}")
    return 0
