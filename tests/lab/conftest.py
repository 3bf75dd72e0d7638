"""Fixtures for lab tests: skip cleanly without root/binaries, always tear labs down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aksflight.lab import LabSpec, LabState, down, spec_from_hosts, up
from tests.lab.lab_support import lab_unavailable_reason, unique_lab_name

LabFactory = Callable[..., LabState]


@pytest.fixture(scope="session")
def lab_available() -> None:
    reason = lab_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


def _factory(base: Path, built: list[tuple[str, Path]]) -> LabFactory:
    def make(hosts: list[tuple[str, tuple[int, ...]]], **behaviours: object) -> LabState:
        name = unique_lab_name()
        state_dir = base / name
        built.append((name, state_dir))
        spec: LabSpec = spec_from_hosts(hosts, name=name, **behaviours)  # type: ignore[arg-type]
        return up(spec, state_dir)

    return make


@pytest.fixture
def make_lab(lab_available: None, tmp_path: Path) -> Iterator[LabFactory]:
    """Build labs with unique names for one test; every one is torn down afterwards."""
    built: list[tuple[str, Path]] = []
    yield _factory(tmp_path, built)
    for name, state_dir in built:
        down(name, state_dir)


@pytest.fixture(scope="module")
def make_module_lab(
    lab_available: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LabFactory]:
    """Like `make_lab`, for a lab shared by a module's tests (it is read-only for them)."""
    built: list[tuple[str, Path]] = []
    yield _factory(tmp_path_factory.mktemp("labs"), built)
    for name, state_dir in built:
        down(name, state_dir)
