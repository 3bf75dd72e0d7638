"""The ``fakekube`` fixture: a started FakeKube, stopped after the test.

Load it with ``pytest_plugins = ["fakekube.pytest_plugin"]`` in a conftest. The fixture
also fails the test if the fake itself hit an internal error, so a bug in the fake
cannot pass for a bug in the code under test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .fake import FakeKube


@pytest.fixture
def fakekube(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FakeKube]:
    """A running fake API server with ``kubeconfig_path`` written;
    ``@pytest.mark.fakekube(controllers=False)`` passes options to FakeKube."""
    marker = request.node.get_closest_marker("fakekube")
    options = dict(marker.kwargs) if marker else {}
    server = FakeKube(**options).start()
    server.write_kubeconfig(tmp_path / "kubeconfig")
    try:
        yield server
    finally:
        server.stop()
    if server.internal_errors:
        pytest.fail("the fake API server failed internally:\n" + "\n".join(server.internal_errors))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fakekube(**options): options for the fakekube fixture")
