"""Auditing an existing Azure Firewall policy against the requirements.

    load_policy(json_document) -> Policy          (via azure-mgmt-network models)
    audit_policy(policy, allowlist) -> AuditResult
    render_audit("table" | "json" | "markdown", result) -> str

Exceptions derive from `AuditError` (`PolicyFormatError` for a document it cannot read).
"""

from reports.audit.errors import AuditError, PolicyFormatError
from reports.audit.evaluate import (
    AuditResult,
    BroadRule,
    Decision,
    RequirementVerdict,
    Verdict,
    audit_policy,
)
from reports.audit.policy import Layer, Policy, PolicyRule, load_policy
from reports.audit.render import AUDIT_FORMATS, AUDIT_SCHEMA, audit_document, render_audit

__all__ = [
    "AUDIT_FORMATS",
    "AUDIT_SCHEMA",
    "AuditError",
    "AuditResult",
    "BroadRule",
    "Decision",
    "Layer",
    "Policy",
    "PolicyFormatError",
    "PolicyRule",
    "RequirementVerdict",
    "Verdict",
    "audit_document",
    "audit_policy",
    "load_policy",
    "render_audit",
]
