"""`aksflight lab`: the network lab, with `-c CONFIG` serving every host the plan probes."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aksflight.config_file import load_config
from rules.catalogue import requirements_for
from rules.plan import build_plan


def plan_hosts(args: argparse.Namespace) -> Sequence[tuple[str, Sequence[int]]]:
    """Every concrete host name the config's plan resolves, with the ports it connects to."""
    config = load_config(Path(args.config))
    return build_plan(requirements_for(config)).probe_targets()


def register(sub: Any) -> None:
    from aksflight.lab.cli import add_lab_parser

    add_lab_parser(sub, plan_hosts=plan_hosts)
