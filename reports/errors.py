"""The reports layer's exceptions.

    ReportsError
    ├── UnknownFormatError   an output format nobody registered; names the known ones
    └── ReportInputError     an option or input a renderer cannot use (e.g. a width)

Each message is one line, fit to print after ``aksflight: `` and exit 2.
"""

from __future__ import annotations


class ReportsError(Exception):
    """Base of every error the reports layer raises."""


class UnknownFormatError(ReportsError):
    """No renderer is registered under this format name."""

    def __init__(self, what: str, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"-o: unknown {what} format {name!r} (known: {', '.join(known)})")


class ReportInputError(ReportsError):
    """A renderer was given an option or input it cannot use."""
