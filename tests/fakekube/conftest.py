"""Puts tests/support on the import path (until pytest's pythonpath includes it) and
loads the fakekube fixture."""

import sys
from pathlib import Path

SUPPORT = str(Path(__file__).resolve().parent.parent / "support")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)

pytest_plugins = ["fakekube.pytest_plugin"]


def pytest_configure(config):  # type: ignore[no-untyped-def]
    config.addinivalue_line("markers", "fakekube(**options): options for the fakekube fixture")
