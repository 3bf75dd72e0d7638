"""`aksflight plan`: the checks a deployment needs, phase by phase. Offline: no network."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from aksflight.commands.common import add_config_flags, load_plan
from aksflight.output import console_options, write_output

FORMATS = ("table", "json", "markdown", "mermaid", "dot")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "plan",
        help="show the checks a deployment needs, phase by phase (offline)",
        description="Build the time-ordered dependency graph of connectivity checks for a "
        "config. Needs no network and no credentials.",
    )
    add_config_flags(parser)
    parser.add_argument("-o", "--output", choices=FORMATS, default="table")
    parser.add_argument("--out", type=Path, metavar="FILE", help="write to FILE, not stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    _config, plan = load_plan(args)
    from reports import PLAN_FORMATS

    render = PLAN_FORMATS[args.output]
    write_output(render(plan, console_options(args.out)), args.out, sys.stdout)
    return 0
