"""Flags and loading shared by several commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from aksflight.config_file import load_catalogue, load_config
from aksflight.errors import UsageError
from rules.catalogue import requirements_for
from rules.config import EnvironmentConfig
from rules.model import PHASE_ORDER, Phase, Requirement
from rules.plan import Plan, build_plan


def add_config_flags(parser: argparse.ArgumentParser, *, phases: bool = True) -> None:
    parser.add_argument(
        "-c",
        "--config",
        required=True,
        type=Path,
        metavar="FILE",
        help="the environment config (YAML)",
    )
    parser.add_argument(
        "--catalogue",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="an extra catalogue file of your own (repeatable)",
    )
    if phases:
        parser.add_argument(
            "--phase",
            action="append",
            default=[],
            metavar="P",
            help="only these phases (repeatable): " + ", ".join(p.value for p in PHASE_ORDER),
        )


def parse_phases(values: list[str]) -> list[Phase] | None:
    if not values:
        return None
    known = {p.value: p for p in PHASE_ORDER}
    out = []
    for value in values:
        if value not in known:
            raise UsageError(f"--phase: unknown phase {value!r} (known: {', '.join(known)})")
        out.append(known[value])
    return out


def load_requirements(args: argparse.Namespace) -> tuple[EnvironmentConfig, list[Requirement]]:
    config = load_config(args.config)
    extra = [load_catalogue(path) for path in args.catalogue]
    return config, requirements_for(config, extra)


def load_plan(args: argparse.Namespace) -> tuple[EnvironmentConfig, Plan]:
    config, requirements = load_requirements(args)
    phases = parse_phases(getattr(args, "phase", []))
    keep_going = bool(getattr(args, "keep_going", False))
    return config, build_plan(requirements, phases, keep_going=keep_going)
