"""`aksflight service`: v1's Webservice operations on deployed services.

    aksflight service list [-o json]
    aksflight service state|logs|keys|token|delete NAME [-o json]   (logs: [--init] [--tail N])
    aksflight service regen-key NAME primary|secondary [--value K] [-o json]
    aksflight service update NAME [the options of deploy]

Each takes --target local|kubernetes (default local) and, for Kubernetes, --context.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from aksflight.commands.deploy import (
    add_deploy_flags,
    add_target_flags,
    deploy_or_update,
    emit,
    make_target,
    report_failure,
    translate,
)

OUTPUTS = ("table", "json", "yaml")


def _common(parser: argparse.ArgumentParser, *, name: bool = True) -> None:
    if name:
        parser.add_argument("name", metavar="NAME")
    add_target_flags(parser)
    parser.add_argument("--context", metavar="CTX", help="kubeconfig context (kubernetes)")
    parser.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file (kubernetes)")
    parser.add_argument("-o", "--output", choices=OUTPUTS, default="table")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "service",
        help="list, inspect, rotate keys of, update and delete deployed services",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every service on the target")
    _common(listing, name=False)
    listing.set_defaults(handler=_list)
    for action, handler, what in (
        ("state", _state, "Transitioning, Healthy, Unhealthy, Unschedulable or Failed"),
        ("keys", _keys, "the primary and secondary key"),
        ("token", _token, "an access token and when to refresh it"),
        ("delete", _delete, "remove the service and everything its deploy created"),
    ):
        command = actions.add_parser(action, help=what)
        _common(command)
        command.set_defaults(handler=handler)
    logs = actions.add_parser("logs", help="the model server's log (--init: the set-up's)")
    _common(logs)
    logs.add_argument("--init", action="store_true", help="the init container / environment")
    logs.add_argument("--tail", type=int, default=5000, metavar="N", help="last N lines")
    logs.set_defaults(handler=_logs)
    regen = actions.add_parser("regen-key", help="regenerate (or set) one key")
    _common(regen)
    regen.add_argument("key", choices=("primary", "secondary", "Primary", "Secondary"))
    regen.add_argument("--value", metavar="K", help="set this key instead of a random one")
    regen.set_defaults(handler=_regen)
    update = actions.add_parser("update", help="change what is given, keep the rest")
    add_deploy_flags(update, update=True)
    update.set_defaults(handler=_update)


def _call(args: argparse.Namespace, action: Any) -> int:
    from deployer.errors import DeployConfigError, DeployerError, ServiceNotFound

    try:
        return int(action(make_target(args)))
    except (DeployConfigError, ServiceNotFound) as exc:
        raise translate(exc) from None
    except DeployerError as exc:
        return report_failure(exc)


def _list(args: argparse.Namespace) -> int:
    def action(target: Any) -> int:
        services = [info.to_dict() for info in target.list()]
        if args.output != "table":
            emit(services, args.output)
            return 0
        if not services:
            print(f"no services on the {target.name} target")
        for item in services:
            print(f"{item['name']:<24} {item['state']:<14} {item['auth']:<6} {item['scoring_uri']}")
        return 0

    return _call(args, action)


def _state(args: argparse.Namespace) -> int:
    def action(target: Any) -> int:
        info = target.info(args.name)
        if args.output != "table":
            emit({"state": info.state.value, "name": info.name, "detail": info.detail}, args.output)
        else:
            print(info.state.value + (f" ({info.detail})" if info.detail else ""))
        return 0

    return _call(args, action)


def _keys(args: argparse.Namespace) -> int:
    def action(target: Any) -> int:
        primary, secondary = target.keys(args.name)
        if args.output != "table":
            emit({"primary_key": primary, "secondary_key": secondary}, args.output)
        else:
            print(f"primary   {primary}\nsecondary {secondary}")
        return 0

    return _call(args, action)


def _token(args: argparse.Namespace) -> int:
    def action(target: Any) -> int:
        token, refresh_by = target.token(args.name)
        data = {"token": token, "refresh_by": refresh_by.isoformat()}
        if args.output != "table":
            emit(data, args.output)
        else:
            print(f"{token}\nrefresh by {data['refresh_by']}")
        return 0

    return _call(args, action)


def _regen(args: argparse.Namespace) -> int:
    def action(target: Any) -> int:
        primary, secondary = target.regen_key(args.name, args.key, args.value)
        if args.output != "table":
            emit({"primary_key": primary, "secondary_key": secondary}, args.output)
        else:
            print(f"{args.key.lower()} key regenerated")
            print(f"primary   {primary}\nsecondary {secondary}")
        return 0

    return _call(args, action)


def _logs(args: argparse.Namespace) -> int:
    def action(target: Any) -> int:
        text = target.logs(args.name, args.tail, args.init)
        if args.output != "table":
            emit({"name": args.name, "init": args.init, "logs": text}, args.output)
        else:
            sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
        return 0

    return _call(args, action)


def _delete(args: argparse.Namespace) -> int:
    def action(target: Any) -> int:
        target.delete(args.name)
        if args.output != "table":
            print(json.dumps({"name": args.name, "deleted": True}))
        else:
            print(f"deleted {args.name}")
        return 0

    return _call(args, action)


def _update(args: argparse.Namespace) -> int:
    return deploy_or_update(args, update=True)
