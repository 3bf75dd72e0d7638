"""Where the local target keeps its state, and stopping the processes it started.

    <state>/local/                    0700: keys live here
      lock                            held by every command that changes something
      router.json                     the router's configuration (written by the deployer)
      router.log  supervisor.log  access.log
      supervisor.pid  supervisor.json
      envs/<hash>/                    the environment cache
      services/<name>/service.json    the service's record (its keys too, 0600)
      services/<name>/releases/<digest>/{app,azureml-models}
      services/<name>/{home,logs,run}/  HOME for gunicorn, replica logs, replica pid files

`<state>` is AKSFLIGHT_STATE_DIR, else $XDG_STATE_HOME/aksflight, else
~/.local/state/aksflight.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

STATE_VARIABLE = "AKSFLIGHT_STATE_DIR"
REPLICA_MARKER = "azureml_inference_server_http"
START_MARKER = "--- router started by the supervisor ---"


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get(STATE_VARIABLE):
        return Path(env[STATE_VARIABLE])
    base = Path(env["XDG_STATE_HOME"]) if env.get("XDG_STATE_HOME") else None
    return (base or Path.home() / ".local" / "state") / "aksflight"


@dataclass(frozen=True)
class Layout:
    root: Path

    @classmethod
    def default(cls) -> Layout:
        return cls(state_dir() / "local")

    @property
    def router_config(self) -> Path:
        return self.root / "router.json"

    @property
    def router_log(self) -> Path:
        return self.root / "router.log"

    @property
    def supervisor_log(self) -> Path:
        return self.root / "supervisor.log"

    @property
    def access_log(self) -> Path:
        return self.root / "access.log"

    @property
    def supervisor_pid(self) -> Path:
        return self.root / "supervisor.pid"

    @property
    def supervisor_status(self) -> Path:
        return self.root / "supervisor.json"

    @property
    def envs(self) -> Path:
        return self.root / "envs"

    @property
    def services(self) -> Path:
        return self.root / "services"

    def service(self, name: str) -> Path:
        return self.services / name

    def record(self, name: str) -> Path:
        return self.service(name) / "service.json"

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One changing command at a time (deploy, update, delete, stop, regen-key)."""
        self.ensure()
        with (self.root / "lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def kill_group(pid: int, timeout: float) -> None:
    """SIGTERM the process group led by `pid`, SIGKILL it if it outlives `timeout`."""
    import time

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.02)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def sweep_replicas(layout: Layout, service: str | None = None) -> int:
    """Stop replicas whose pid files remain (their router died or forgot them); returns
    how many were still running. A pid is only signalled if it is still a model server."""
    stopped = 0
    pattern = f"{service}/run/replica-*.pid" if service else "*/run/replica-*.pid"
    for pidfile in sorted(layout.services.glob(pattern)):
        pid = read_pid(pidfile)
        if pid is not None and pid_alive(pid) and REPLICA_MARKER in process_cmdline(pid):
            kill_group(pid, 5.0)
            stopped += 1
        pidfile.unlink(missing_ok=True)
    return stopped


def live_replica_pids(layout: Layout, service: str) -> list[int]:
    pids = []
    for pidfile in sorted((layout.service(service) / "run").glob("replica-*.pid")):
        pid = read_pid(pidfile)
        if pid is not None and pid_alive(pid) and REPLICA_MARKER in process_cmdline(pid):
            pids.append(pid)
    return pids
