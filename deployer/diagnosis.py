"""Why a service did not become Healthy, and which preflight phase and checks explain it.

Pure: targets collect pod status, events and logs; these functions turn them into a
`Diagnosis` (collect, then judge, as everywhere else). A cause that is a network problem
names the phase it breaks and the stable check ids (`dns:<host>`, `tcp:<host>:443`) so the
user is pointed at the preflight finding; one that is not (a bug in the entry script, too
little CPU) says so and what to change instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deployer.states import ServiceState
from rules.model import CheckKind, Phase

if TYPE_CHECKING:
    from rules.plan import Plan

_TRACEBACK = "Traceback (most recent call last):"
_CHAIN_MARKERS = (
    "The above exception was the direct cause of the following exception",
    "During handling of the above exception, another exception occurred",
)
# Exception names that mean "could not reach something", with the host in the message.
_NETWORK_ERRORS = (
    "gaierror",
    "NameResolutionError",
    "ConnectionRefusedError",
    "ConnectionError",
    "ConnectTimeout",
    "ConnectTimeoutError",
    "NewConnectionError",
    "URLError",
    "TimeoutError",
    "SSLError",
    "SSLCertVerificationError",
    "OperationalError",
)
_NAME = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
_QUOTED_HOST = re.compile(
    rf"[\"'](?:[a-z]+://)?({_NAME})(?::(\d+))?[/\"'](?:\s*,\s*(\d+))?", re.IGNORECASE
)
_BARE_HOST = re.compile(rf"(?<![\w.])({_NAME})(?![\w.])", re.IGNORECASE)
_NOT_HOSTS = re.compile(r"\.(py|pyc|so|log|json|txt|joblib|pkl|yaml|yml|csv)$")


@dataclass(frozen=True)
class Diagnosis:
    """One cause. `phase`/`checks` are set when the network explains it."""

    state: ServiceState
    cause: str
    message: str
    phase: Phase | None = None
    checks: tuple[str, ...] = ()
    hint: str = ""
    logs: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "cause": self.cause,
            "message": self.message,
            "phase": self.phase.value if self.phase else None,
            "checks": list(self.checks),
            "hint": self.hint,
            "logs": self.logs,
        }

    def lines(self) -> list[str]:
        """For people: the cause, then where to look."""
        out = [f"{self.state.value}: {self.cause}: {self.message}"]
        if self.phase is not None:
            checks = ", ".join(self.checks) or "(no concrete check)"
            out.append(f"  explained by preflight phase {self.phase.value}: checks {checks}")
            out.append(f"  run `aksflight check -c CONFIG --phase {self.phase.value}` to confirm")
        if self.hint:
            out.append(f"  {self.hint}")
        if self.logs:
            out.append("  from the logs:")
            out.extend(f"    {line}" for line in self.logs.splitlines())
        return out


def _one_traceback(text: str) -> tuple[str, int]:
    """The traceback at the start of `text` (to its unindented exception line), and its end."""
    lines = text.splitlines(keepends=True)
    out = [lines[0]]
    for line in lines[1:]:
        out.append(line)
        if line.strip() and not line[0].isspace():
            break
    block = "".join(out)
    return block.rstrip("\n"), len(block)


def last_traceback(log: str, max_lines: int = 40) -> str:
    """The root cause of the last (possibly chained) Python traceback in a log.

    Chained exceptions print the cause first ("The above exception was the direct cause
    of the following exception"); the cause is what the user's code raised, the rest is
    the model server wrapping it."""
    starts = [i for i in range(len(log)) if log.startswith(_TRACEBACK, i)]
    if not starts:
        return ""
    blocks = [(start, *_one_traceback(log[start:])) for start in starts]
    chosen = len(blocks) - 1
    while chosen > 0:
        previous_start, _, previous_length = blocks[chosen - 1]
        between = log[previous_start + previous_length : blocks[chosen][0]]
        if not any(marker in between for marker in _CHAIN_MARKERS):
            break
        chosen -= 1
    lines = blocks[chosen][1].splitlines()
    return "\n".join(lines[:1] + lines[1:][-(max_lines - 1) :])


def exception_line(traceback: str) -> str:
    lines = [line for line in traceback.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def endpoints_in(text: str) -> list[tuple[str, int | None]]:
    """(host, port) pairs a traceback mentions: quoted in the code first
    (`connect(("db.example", 5432))`, `"https://api.example/x"`), else bare in messages;
    in order, without duplicates, file names or the exception's own dotted name."""
    exception_names = {
        line.split(":", 1)[0].strip().lower()
        for line in text.splitlines()
        if line and not line[0].isspace() and ":" in line
    }
    seen: dict[str, int | None] = {}
    for match in _QUOTED_HOST.finditer(text):
        host = match.group(1).lower()
        port = match.group(2) or match.group(3)
        if not _NOT_HOSTS.search(host):
            seen.setdefault(host, int(port) if port else None)
    if not seen:
        for match in _BARE_HOST.finditer(text):
            host = match.group(1).lower()
            if not _NOT_HOSTS.search(host) and host not in exception_names:
                seen.setdefault(host, None)
    return list(seen.items())


def hosts_in(text: str) -> list[str]:
    return [host for host, _ in endpoints_in(text)]


def checks_for_host(host: str, port: int | None, plan: Plan | None) -> tuple[str, ...]:
    """The plan's checks of `host` (every kind), else the ids the plan would give them."""
    if plan is not None:
        found = tuple(
            cid
            for cid, check in plan.checks.items()
            if check.target == host and (port is None or check.port in (None, port))
        )
        if found:
            return found
    from rules.plan import check_id

    ids = [check_id(CheckKind.DNS, host)]
    if port is not None:
        ids.append(check_id(CheckKind.TCP, host, port))
    return tuple(ids)


def image_registry(image: str) -> str:
    """The registry host of an image reference (Docker Hub when it names none)."""
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return first.split(":", 1)[0]
    return "docker.io"


def diagnose_script_failure(
    log: str, plan: Plan | None = None, exit_code: int | None = None
) -> Diagnosis:
    """A replica that exits or restarts: the entry script's traceback, and whether it is the
    model's own outbound dependency (serving phase) or a bug in the script."""
    traceback = last_traceback(log)
    error = exception_line(traceback) if traceback else ""
    code = f" (exit code {exit_code})" if exit_code is not None else ""
    message = error or f"the model server exited{code} before answering its health check"
    name = error.split(":", 1)[0].rsplit(".", 1)[-1] if error else ""
    if name in _NETWORK_ERRORS or "Name or service not known" in error:
        endpoints = endpoints_in(traceback or error)
        hosts = [host for host, _ in endpoints]
        checks: tuple[str, ...] = ()
        for host, port in endpoints[:3]:
            checks += checks_for_host(host, port, plan)
        return Diagnosis(
            ServiceState.FAILED,
            "CrashLoopBackOff",
            f"the entry script cannot reach {', '.join(hosts) or 'a dependency'}: {message}",
            Phase.SERVING,
            checks,
            "declare the model's outbound dependency (extra_dependencies) and open it",
            traceback,
        )
    return Diagnosis(
        ServiceState.FAILED,
        "CrashLoopBackOff",
        f"the entry script failed{code}: {message}",
        None,
        (),
        "not a network problem: fix init()/run() in the entry script (the traceback is below)",
        traceback or log[-2000:],
    )


def first_diagnosis(diagnoses: Iterable[Diagnosis]) -> Diagnosis | None:
    """The most telling cause: network causes first (they have a phase), earliest phase."""
    ranked = sorted(
        diagnoses,
        key=lambda d: (d.phase is None, d.phase.rank if d.phase else 0),
    )
    return ranked[0] if ranked else None


def join_checks(*groups: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for group in groups for c in group))
