"""The lab's contact with the machine: tools, commands, namespaces and processes.

Everything that spawns `ip`/`nft` or signals a process goes through here, so failures are
translated to `LabError` in one place and the lifecycle code reads as a list of steps.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aksflight.lab.errors import LabCommandError, LabEnvironmentError

NETNS_DIR = Path("/run/netns")
NETNS_ETC_DIR = Path("/etc/netns")
_SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")


@dataclass(frozen=True, slots=True)
class Tools:
    """Absolute paths of the binaries the lab drives."""

    ip: str
    nft: str
    dnsmasq: str


def find_tools() -> Tools:
    """Check we are root on Linux and find `ip`, `nft` and `dnsmasq` (also in sbin dirs)."""
    if not hasattr(os, "geteuid") or not Path("/proc/self/ns/net").exists():
        raise LabEnvironmentError("the network lab needs Linux network namespaces")
    if os.geteuid() != 0:
        raise LabEnvironmentError("the network lab needs root (it creates network namespaces)")
    search = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN_DIRS])
    found: dict[str, str] = {}
    for binary, package in (("ip", "iproute2"), ("nft", "nftables"), ("dnsmasq", "dnsmasq-base")):
        path = shutil.which(binary, path=search)
        if path is None:
            raise LabEnvironmentError(f"{binary} not found: install the {package} package")
        found[binary] = path
    return Tools(ip=found["ip"], nft=found["nft"], dnsmasq=found["dnsmasq"])


def _first_line(text: str) -> str:
    """The line that says what went wrong (nft prefixes it with "In file included from")."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "Error:" in line:
            return line
    return lines[0] if lines else "no error output"


def run(argv: Sequence[str], what: str, stdin: str | None = None) -> str:
    """Run a command to completion; its stdout, or `LabCommandError` naming `what` failed."""
    try:
        completed = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabCommandError(f"{what}: {exc}") from exc
    if completed.returncode != 0:
        raise LabCommandError(f"{what}: {_first_line(completed.stderr)}")
    return completed.stdout


@dataclass(frozen=True, slots=True)
class Step:
    """One command of a batch that runs in parallel with the others."""

    argv: Sequence[str]
    what: str
    stdin: str | None = None


def run_parallel(steps: Sequence[Step]) -> None:
    """Start every step at once and wait for all; raise for the first that failed."""
    running: list[tuple[Step, subprocess.Popen[str]]] = []
    try:
        for step in steps:
            process = subprocess.Popen(
                list(step.argv),
                stdin=subprocess.PIPE if step.stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            running.append((step, process))
    except OSError as exc:
        for _, process in running:
            process.kill()
            process.wait()
        raise LabCommandError(f"cannot start {step.what}: {exc}") from exc
    failures: list[str] = []
    for step, process in running:
        _, stderr = process.communicate(step.stdin, timeout=60)
        if process.returncode != 0:
            failures.append(f"{step.what}: {_first_line(stderr)}")
    if failures:
        raise LabCommandError(failures[0])


def lab_namespaces(ip: str, lab: str) -> list[str]:
    """The namespaces whose name starts with `<lab>-` (lab names contain no dash)."""
    listing = run([ip, "netns", "list"], "ip netns list")
    names = [line.split()[0] for line in listing.splitlines() if line.strip()]
    return sorted(name for name in names if name.startswith(f"{lab}-"))


def namespace_pids(ip: str, ns: str) -> list[int]:
    """Processes whose network namespace is `ns` (empty when it is already gone)."""
    try:
        listing = run([ip, "netns", "pids", ns], f"ip netns pids {ns}")
    except LabCommandError:
        return []
    return [int(token) for token in listing.split() if token.isdigit()]


def is_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[:1]
    return state != ["Z"]


def cmdline(pid: int) -> list[str]:
    """The process's argv, or empty when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def stop_processes(pids: Sequence[int], grace_s: float = 1.0) -> list[int]:
    """SIGTERM each process group (each pid leads its own session), then SIGKILL stragglers.

    Returns the pids that were alive. Waits until each is gone or a zombie (never reaping:
    a zombie's exit status belongs to its parent), so a deleted namespace is really freed.
    """
    alive = [pid for pid in dict.fromkeys(pids) if pid > 1 and is_alive(pid)]
    for pid in alive:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    remaining = list(alive)
    while remaining:
        remaining = [pid for pid in remaining if is_alive(pid)]
        if not remaining:
            break
        if time.monotonic() >= deadline:
            for pid in remaining:
                _signal(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5.0
        time.sleep(0.005)
    return alive


def _signal(pid: int, signum: signal.Signals) -> None:
    """Signal the pid's process group when it leads one, else just the pid."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def write_netns_resolv_conf(ns: str, text: str) -> None:
    """`ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf."""
    directory = NETNS_ETC_DIR / ns
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "resolv.conf").write_text(text, encoding="ascii")


def remove_netns_etc(ns: str) -> None:
    """Remove what `write_netns_resolv_conf` wrote (and the directory, when it is empty)."""
    directory = NETNS_ETC_DIR / ns
    (directory / "resolv.conf").unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        directory.rmdir()
