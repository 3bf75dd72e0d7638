"""What the local target looks at to know a service's state: the router's `/-/load`, its
log and the replicas' own logs.

A replica that cannot start is only visible in the router's log (its initial start and
the autoscaler's retries log the reason); the lines matched here are the router's
`replicas of NAME not started: ...` and `autoscale NAME: replica ...`.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import httpx

from deployer._files import read_json
from deployer.diagnosis import Diagnosis, diagnose_script_failure
from deployer.local.layout import START_MARKER, Layout
from deployer.states import ServiceState

if TYPE_CHECKING:
    from rules.plan import Plan

_EXIT_CODE = re.compile(r"exited with code (-?\d+)")


class LocalProbe:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def ready(self, base_url: str, name: str) -> int:
        """Replicas of `name` in rotation; -1 when the router does not answer."""
        try:
            answer = httpx.get(base_url + "/-/load", timeout=0.5)
            figures = answer.json()
        except (httpx.HTTPError, ValueError):
            return -1
        service = (figures.get("services") or {}).get(name)
        return int(service.get("ready", 0)) if isinstance(service, dict) else 0

    def router_ready(self, base_url: str) -> bool:
        try:
            return httpx.get(base_url + "/readyz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def router_log_size(self) -> int:
        try:
            return self.layout.router_log.stat().st_size
        except OSError:
            return 0

    def _router_log(self, offset: int, only_current: bool) -> str:
        try:
            with self.layout.router_log.open("rb") as handle:
                handle.seek(offset)
                text = handle.read().decode(errors="replace")
        except OSError:
            return ""
        if only_current and START_MARKER in text:
            text = text[text.rfind(START_MARKER) :]
        return text

    def failure(
        self, name: str, offset: int, plan: Plan | None = None, *, only_current: bool = False
    ) -> Diagnosis | None:
        """A diagnosis when the router logged that the service's replicas did not start,
        or that the router itself cannot run; None while nothing failed."""
        text = self._router_log(offset, only_current)
        for line in text.splitlines():
            if line.startswith("router: "):
                return Diagnosis(
                    ServiceState.FAILED,
                    "RouterFailed",
                    line.removeprefix("router: "),
                    hint=f"see {self.layout.router_log}",
                )
        markers = (f"replicas of {name} not started: ", f"autoscale {name}: replica ")
        reasons = [
            line.split(marker, 1)[1]
            for line in text.splitlines()
            for marker in markers
            if marker in line
        ]
        if not reasons:
            return None
        reason = reasons[-1]
        code = _EXIT_CODE.search(reason)
        log = self.newest_replica_log(name)
        if not log and not code:
            return Diagnosis(ServiceState.FAILED, "ReplicaFailed", reason)
        return diagnose_script_failure(log, plan, int(code.group(1)) if code else None)

    def newest_replica_log(self, name: str) -> str:
        logs = sorted(
            (self.layout.service(name) / "logs").glob("replica-*.log"),
            key=lambda p: p.stat().st_mtime,
        )
        return logs[-1].read_text(errors="replace") if logs else ""

    def replica_logs(self, name: str, tail: int) -> str:
        """Every replica's log, oldest first, each under a header; the last `tail` lines."""
        logs = sorted(
            (self.layout.service(name) / "logs").glob("replica-*.log"),
            key=lambda p: p.stat().st_mtime,
        )
        lines: list[str] = []
        for path in logs:
            lines.append(f"==> {path.stem} <==")
            lines.extend(path.read_text(errors="replace").splitlines())
        return "\n".join(lines[-tail:]) if tail > 0 else ""

    def restarts(self) -> int:
        status = read_json(self.layout.supervisor_status)
        return int(status.get("restarts", 0)) if isinstance(status, dict) else 0

    def wait_restarted(self, before: int, base_url: str, timeout: float = 30.0) -> None:
        """Until the supervisor has started the router again and it answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.restarts() > before and self.router_ready(base_url):
                return
            time.sleep(0.02)

    def wait_key_accepted(
        self, base_url: str, name: str, primary: str, secondary: str, timeout: float = 10.0
    ) -> bool:
        """Until the router accepts both keys (it reloads its file every fraction of a second)."""
        url = f"{base_url}/api/v1/service/{name}/swagger.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                statuses = [
                    httpx.get(
                        url, headers={"Authorization": f"Bearer {key}"}, timeout=2
                    ).status_code
                    for key in (primary, secondary)
                ]
            except httpx.HTTPError:
                statuses = [0]
            if all(status not in (0, 401) for status in statuses):
                return True
            time.sleep(0.05)
        return False
