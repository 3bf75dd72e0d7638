"""Running the audit on the fixture policies against the fixture config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from reports.allowlist import Allowlist, build_allowlist
from reports.audit import AuditResult, Verdict, audit_policy, load_policy
from rules.catalogue import requirements_for
from rules.config import parse_config

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CONFIG = FIXTURES / "config.yaml"


def fixture_allowlist(sources: list[str] | None = None) -> Allowlist:
    config = parse_config(yaml.safe_load(CONFIG.read_text()))
    cidrs = config.network.source_cidrs if sources is None else sources
    return build_allowlist(requirements_for(config), cidrs)


def audit_document(document: Any, sources: list[str] | None = None) -> AuditResult:
    return audit_policy(load_policy(document), fixture_allowlist(sources))


def audit_fixture(name: str) -> AuditResult:
    return audit_document(json.loads((FIXTURES / name).read_text()))


def verdicts(result: AuditResult) -> dict[str, Verdict]:
    return {v.requirement_id: v.verdict for v in result.verdicts}


def by_id(result: AuditResult, requirement_id: str) -> Any:
    return next(v for v in result.verdicts if v.requirement_id == requirement_id)


ALL_IDS = {
    "azureml-aks/api-server",
    "azureml-aks/mcr",
    "azureml-aks/mcr-data",
    "azureml-aks/storage-blob",
    "azureml-aks/storage-table",
    "azureml-aks/azureml-api",
    "azureml-aks/kusto-telemetry",
    "azureml-aks/acr",
    "aks-base/aks-api-fqdns",
    "aks-base/aks-mcr",
    "aks-base/aks-mcr-data",
    "aks-base/aks-mcr-edge",
    "aks-base/aks-management",
    "aks-base/aks-login",
    "aks-base/aks-packages-microsoft",
    "aks-base/aks-packages-aks",
    "aks-base/aks-tunnel-udp",
    "aks-base/aks-tunnel-tcp",
    "aks-base/aks-ntp",
}
