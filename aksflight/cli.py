"""The `aksflight` command: parses flags, dispatches to a command module, maps errors to exit codes.

Exit codes: 0 no failure, 1 a check failed, 2 bad input (one line on stderr, no traceback).
Each command lives in `aksflight/commands/<name>.py` with `register(subparsers)`, which adds
its parser and sets `handler` to a function `(args) -> int`.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from aksflight.errors import UsageError

COMMANDS = (
    "plan",
    "probe",
    "check",
    "replicas",
    "allowlist",
    "audit",
    "lab",
    "deploy",
    "service",
    "local",
    "image",
    "router",
    "demo",
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `aksflight: <what is wrong>` and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog.split()[-1] if ' ' in self.prog else 'aksflight'}: {message}")


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; when `argv` names a command, only that command's module is imported
    (start-up stays fast: `allowlist` pulls in the Azure SDK, `check` the Kubernetes client)."""
    parser = _Parser(
        prog="aksflight",
        description="Preflight, allowlists, deployer and router for Azure ML v1-style "
        "model web services on Kubernetes.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name in [wanted] if wanted in COMMANDS else COMMANDS:
        try:
            module = importlib.import_module(f"aksflight.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"aksflight.commands.{name}":
                continue  # a command not built yet
            raise
        module.register(sub)
    return parser


_INPUT_ERRORS = (
    ("aksflight.errors", "UsageError"),
    ("rules.errors", "RulesError"),
    ("preflight.errors", "PreflightError"),
    ("reports.errors", "ReportsError"),
    ("aksflight.lab.errors", "LabError"),
    ("deployer.errors", "DeployerError"),
)


def is_input_error(exc: BaseException) -> bool:
    """Bad input from any package (one line, exit 2). A package whose errors module was
    never imported cannot have raised, so nothing is imported here."""
    for module_name, class_name in _INPUT_ERRORS:
        module = sys.modules.get(module_name)
        cls = getattr(module, class_name, None) if module is not None else None
        if isinstance(cls, type) and isinstance(exc, cls):
            return True
    return False


def main(argv: Sequence[str] | None = None) -> int:
    # Commands build large, short-lived object graphs (30,000 checks): collect young
    # objects less often, so the collector does not rescan them thousands of times.
    gc.set_threshold(100_000, 50, 50)
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(args_list)
        args = parser.parse_args(args_list)
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return EXIT_USAGE
        return int(handler(args))
    except KeyboardInterrupt:
        print("aksflight: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        if not is_input_error(exc):
            raise
        print(f"aksflight: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
