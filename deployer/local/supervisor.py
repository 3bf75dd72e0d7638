"""The local target's background supervisor: keeps the router running after `deploy` returns.

    python -m deployer.local.supervisor --state DIR

It starts `python -m router --config DIR/router.json` in its own process group and:
- restarts it when it exits unexpectedly (backoff 1 s doubling to 30 s);
- on SIGUSR1 restarts it at once (the deployer asks for this when a service is updated or
  removed, so its replicas are replaced);
- on SIGTERM/SIGINT stops it and exits.
Each time the router is gone it also stops any replica the router left behind (found by the
pid files the replicas write), so no model server outlives its router.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from deployer._files import write_json_atomic
from deployer.local.layout import START_MARKER, Layout, sweep_replicas
from router.processes import stop_process_group

MAX_BACKOFF = 30.0


class Supervisor:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.router: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._wake = threading.Event()
        self._restart = False
        self._stop = False

    def _start_router(self) -> None:
        log = self.layout.router_log.open("ab")
        log.write(f"{START_MARKER}\n".encode())
        log.flush()
        try:
            self.router = subprocess.Popen(
                [sys.executable, "-m", "router", "--config", str(self.layout.router_config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.layout.root,
            )
        finally:
            log.close()
        self._write_status()

    def _write_status(self) -> None:
        write_json_atomic(
            self.layout.supervisor_status,
            {
                "supervisor_pid": os.getpid(),
                "router_pid": self.router.pid if self.router else None,
                "restarts": self.restarts,
                "time": time.time(),
            },
        )

    def _stop_router(self) -> None:
        if self.router is not None:
            stop_process_group(self.router, 10.0)
            self.router = None
        sweep_replicas(self.layout)

    def request_restart(self, *_: object) -> None:
        self._restart = True
        self._wake.set()

    def request_stop(self, *_: object) -> None:
        self._stop = True
        self._wake.set()

    def run(self) -> int:
        """Supervise until told to stop; at most one supervisor per state directory (a
        second one started by a concurrent deploy finds the lock taken and leaves)."""
        self.layout.ensure()
        with (self.layout.root / "supervisor.lock").open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print("supervisor: another supervisor is running", file=sys.stderr, flush=True)
                return 0
            return self._run()

    def _run(self) -> int:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGUSR1, self.request_restart)
        self.layout.supervisor_pid.write_text(f"{os.getpid()}\n")
        backoff = 1.0
        try:
            sweep_replicas(self.layout)
            self._start_router()
            while not self._stop:
                self._wake.wait(0.2)
                self._wake.clear()
                if self._stop:
                    break
                if self._restart:
                    self._restart = False
                    self._stop_router()
                    self.restarts += 1
                    self._start_router()
                    backoff = 1.0
                    continue
                assert self.router is not None
                code = self.router.poll()
                if code is None:
                    continue
                print(f"supervisor: router exited with code {code}", file=sys.stderr, flush=True)
                self._stop_router()
                if self._wake.wait(backoff) and self._stop:
                    break
                self._wake.clear()
                backoff = min(MAX_BACKOFF, backoff * 2)
                self.restarts += 1
                self._start_router()
        finally:
            self._stop_router()
            with contextlib.suppress(OSError):
                self.layout.supervisor_pid.unlink()
            with contextlib.suppress(OSError):
                self.layout.supervisor_status.unlink()
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployer.local.supervisor")
    parser.add_argument("--state", required=True, type=Path, help="the local target's directory")
    args = parser.parse_args(argv)
    return Supervisor(Layout(args.state)).run()


if __name__ == "__main__":
    sys.exit(main())
