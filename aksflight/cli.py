"""The `aksflight` command: parses flags, dispatches to a command module, maps errors to exit codes.

Exit codes: 0 no failure, 1 a check failed, 2 bad input (one line on stderr, no traceback).
Each command lives in `aksflight/commands/<name>.py` with `register(subparsers)`, which adds
its parser and sets `handler` to a function `(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from aksflight.errors import UsageError

COMMANDS = (
    "plan",
    "check",
    "replicas",
    "allowlist",
    "audit",
    "lab",
    "deploy",
    "service",
    "local",
    "demo",
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `aksflight: <what is wrong>` and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog.split()[-1] if ' ' in self.prog else 'aksflight'}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="aksflight",
        description="Preflight, allowlists, deployer and router for Azure ML v1-style "
        "model web services on Kubernetes.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"aksflight.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"aksflight.commands.{name}":
                continue  # a command not built yet
            raise
        module.register(sub)
    return parser


def _input_errors() -> tuple[type[Exception], ...]:
    """Every package's bad-input exception: each becomes one line and exit code 2."""
    from aksflight.lab.errors import LabError
    from preflight.errors import PreflightError
    from reports.errors import ReportsError
    from rules.errors import RulesError

    return (UsageError, RulesError, PreflightError, ReportsError, LabError)


def main(argv: Sequence[str] | None = None) -> int:
    input_errors = _input_errors()
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return EXIT_USAGE
        return int(handler(args))
    except input_errors as exc:
        print(f"aksflight: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("aksflight: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
