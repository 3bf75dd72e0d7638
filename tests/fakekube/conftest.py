"""Puts tests/support on the import path (until pytest's pythonpath includes it) and
offers the fakekube fixture to these tests."""

import sys
from pathlib import Path

SUPPORT = str(Path(__file__).resolve().parent.parent / "support")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)

from fakekube.pytest_plugin import fakekube, pytest_configure  # noqa: E402, F401
