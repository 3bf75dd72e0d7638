"""The preflight layer's exceptions.

    PreflightError
    └── OptionsError      a probe option is unusable; `option` names it

Probes never raise for what they saw on the network: a refused connection is an
`Observation`, not an exception. Only bad input raises, with a one-line message fit to
print after ``aksflight: `` and exit 2.
"""

from __future__ import annotations


class PreflightError(Exception):
    """Base of every error the preflight layer raises."""


class OptionsError(PreflightError):
    """A probe option is unusable (a bad nameserver, an unreadable CA bundle, ...)."""

    def __init__(self, option: str, problem: str) -> None:
        self.option = option
        self.problem = problem
        super().__init__(f"{option}: {problem}")
