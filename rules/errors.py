"""The rules layer's exceptions.

    RulesError
    ├── ConfigError       a config value breaks a rule; `field` names it
    ├── CatalogueError    a catalogue file is malformed
    └── SizingError       a sizing input is out of range

Each message is one line, fit to print after ``aksflight: `` and exit 2.
"""

from __future__ import annotations


class RulesError(Exception):
    """Base of every error the rules layer raises."""


class ConfigError(RulesError):
    """A config value breaks a rule."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}" if field else rule)


class CatalogueError(RulesError):
    """A catalogue file is malformed (unknown key, bad template, bad condition)."""


class SizingError(RulesError):
    """A sizing input is out of range."""
