"""The audit's exceptions.

    AuditError
    └── PolicyFormatError   the JSON is not a policy, rule collection group or firewall we read

Messages are one line and name the place in the document (`resources[3].properties`).
"""

from __future__ import annotations


class AuditError(Exception):
    """Base of every error the audit raises."""


class PolicyFormatError(AuditError):
    """The document has a shape the audit does not read, or a value of the wrong type."""
