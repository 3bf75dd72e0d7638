"""Helpers for tests that run inside the network lab (importable by other test packages)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from aksflight.lab import LabState, exec_in_node

SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def ip_binary() -> str:
    return shutil.which("ip", path=SBIN) or "ip"


def lab_unavailable_reason() -> str | None:
    """Why the lab cannot run here (None when it can): not root, or a binary missing."""
    if not sys.platform.startswith("linux"):
        return "the network lab needs Linux"
    if os.geteuid() != 0:
        return "the network lab needs root"
    for binary in ("ip", "nft", "dnsmasq"):
        if shutil.which(binary, path=SBIN) is None:
            return f"the network lab needs {binary}"
    probe_name = f"tprobe{secrets.token_hex(2)}"
    add = subprocess.run(
        [ip_binary(), "netns", "add", probe_name], capture_output=True, check=False
    )
    subprocess.run([ip_binary(), "netns", "del", probe_name], capture_output=True, check=False)
    if add.returncode != 0:
        return "cannot create network namespaces here"
    return None


def unique_lab_name() -> str:
    """`t` + 6 hex digits: labs of parallel tests (and the demo) never share namespaces."""
    return f"t{secrets.token_hex(3)}"


def node_python(
    state: LabState, code: str, *args: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run Python code in the lab's node namespace with this interpreter."""
    return exec_in_node(state, [sys.executable, "-c", code, *args], timeout=timeout)


def namespaces_with_prefix(prefix: str) -> list[str]:
    listing = subprocess.run(
        [ip_binary(), "netns", "list"], capture_output=True, text=True, check=True
    ).stdout
    return [line.split()[0] for line in listing.splitlines() if line.startswith(prefix)]


def root_links() -> str:
    return subprocess.run(
        [ip_binary(), "-br", "link"], capture_output=True, text=True, check=True
    ).stdout


def state_path(tmp_path: Path) -> Path:
    return tmp_path / "lab-state"
