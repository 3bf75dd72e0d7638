"""Shared fixtures: the repository's example configs and a plan builder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from rules.catalogue import requirements_for
from rules.config import EnvironmentConfig, parse_config
from rules.plan import Plan, build_plan

pytest_plugins = ["fakekube.pytest_plugin"]

REPO = Path(__file__).resolve().parent.parent


def modelserver_venv() -> Path:
    """The model server's own virtual environment (make test builds it), or a skip."""
    configured = os.environ.get("AKSFLIGHT_MODELSERVER_VENV")
    venv = Path(configured) if configured else REPO / ".venv-modelserver"
    if not (venv / "bin" / "azmlinfsrv").exists():
        pytest.skip(f"no model server virtual environment at {venv}")
    return venv


EXAMPLES = REPO / "aksflight" / "examples"


def example_config(name: str) -> EnvironmentConfig:
    return parse_config(yaml.safe_load((EXAMPLES / name).read_text()))


def example_plan(name: str) -> Plan:
    return build_plan(requirements_for(example_config(name)))


@pytest.fixture
def key_auth_plan() -> Plan:
    return example_plan("key-auth-auto-domain.yaml")
