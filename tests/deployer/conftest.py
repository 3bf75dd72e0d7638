"""Fixtures for the deployer tests: isolated state, the shared environment cache, the
trained example model, and the fake Kubernetes API server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakekube.pytest_plugin import fakekube, pytest_configure  # noqa: F401

from tests.conftest import modelserver_venv
from tests.deployer.local_support import make_target, train_example


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes the user's state directory or HOME (gunicorn writes $HOME/.gunicorn)."""
    monkeypatch.setenv("AKSFLIGHT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir(exist_ok=True)


@pytest.fixture(scope="session")
def venv() -> Path:
    return modelserver_venv()


@pytest.fixture(scope="session")
def env_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One environment cache for the whole run: the seed is checked once, not per test."""
    return tmp_path_factory.mktemp("envcache")


@pytest.fixture(scope="session")
def example_model(venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_example(venv, tmp_path_factory.mktemp("model"))


@pytest.fixture
def local_target(tmp_path: Path, env_cache: Path, venv: Path) -> Iterator[object]:
    target = make_target(tmp_path / "state", env_cache, venv)
    try:
        yield target
    finally:
        target.stop()
