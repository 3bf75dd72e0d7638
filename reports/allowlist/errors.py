"""The allowlist generators' exceptions.

    AllowlistError
    ├── UnsafeValueError   a value about to be emitted failed its re-check (defence in depth)
    ├── UnsupportedError   the format cannot hold what was asked (too many rules, bad option)
    └── NoSourcesError     a format needs source CIDRs and none were given

Each message is one line that names the value or option, fit for ``aksflight: `` and exit 2.
"""

from __future__ import annotations


class AllowlistError(Exception):
    """Base of every error the allowlist generators raise."""


class UnsafeValueError(AllowlistError):
    """A host name, CIDR, port, tag or text failed validation just before being emitted."""

    def __init__(self, where: str, value: object, rule: str) -> None:
        self.where = where
        self.value = value
        self.rule = rule
        super().__init__(f"{where}: refusing to emit {value!r}: {rule}")


class UnsupportedError(AllowlistError):
    """The chosen format cannot express the request as a whole (nothing half-written)."""


class NoSourcesError(AllowlistError):
    """No source CIDRs: the rules would have to allow any source, which is wider than needed."""
