"""The README's main command: the lab story, and nothing left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab


@pytest.mark.skipif(
    sys.platform != "linux"
    or os.geteuid() != 0
    or not all(shutil.which(t) for t in ("ip", "nft", "dnsmasq")),
    reason="the lab needs root, ip, nft and dnsmasq",
)
def test_demo_tells_the_lab_story_and_cleans_up(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aksflight", "demo", "--no-deploy", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "first failing phase: 3. Router running" in out
    assert "tcp:labstorage01.blob.core.windows.net:443" in out
    assert (tmp_path / "preflight.html").read_text().startswith("<!DOCTYPE html>")
    listing = subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, text=True)
    namespaces = listing.stdout
    assert "afdemo-" not in namespaces
