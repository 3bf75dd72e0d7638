"""Bringing a lab up, describing it, running commands in it, and tearing it down.

`up` is a short pipeline: render every config (pure), create namespaces and veths in one
`ip -batch`, configure the four namespaces in parallel, load nftables, start dnsmasq and the
endpoint workers, and wait until all of them are ready. `down` does not trust the state file alone:
it also kills whatever `ip netns pids` finds in the lab's namespaces and deletes every
namespace with the lab's prefix, so it cleans up after a crash and can run any number of times.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aksflight
from aksflight.lab import render, system
from aksflight.lab.certs import Authorities, create_authorities
from aksflight.lab.errors import LabCommandError, LabError, LabSpecError, LabStateError
from aksflight.lab.spec import (
    AddressPlan,
    LabSpec,
    check_lab_name,
    plan_addresses,
    privatelink_name,
    spec_from_dict,
    spec_to_dict,
)

DEFAULT_STATE_ROOT = Path("/run/aksflight/lab")
STATE_FILE = "state.json"
ENDPOINT_MODULE = "aksflight.lab.endpoints"
#: Files `up` writes into the state dir; `down` removes exactly these (and `certs/`).
_STATE_FILES = (
    STATE_FILE,
    "ca.pem",
    "other-ca.pem",
    "dnsmasq.conf",
    "dnsmasq.pid",
    "dnsmasq.log",
    "fw.nft",
    "dns-drop.nft",
    "allowlist.nft",
    "firewall-apply.nft",
    "ca-key.pem",
    "other-ca-key.pem",
)
#: Per-worker files of the endpoint server (`endpoints-0.json`, `endpoints-0.log`, ...).
_WORKER_FILE_PATTERNS = ("endpoints*.json", "endpoints*.log")

_STARTED: dict[int, subprocess.Popen[bytes]] = {}
"""Servers this process started, kept so they are reaped (not left as zombies) on `down`."""


def default_state_dir(name: str) -> Path:
    """Where a lab keeps its state unless told otherwise: `/run/aksflight/lab/<name>`."""
    return DEFAULT_STATE_ROOT / check_lab_name(name)


@dataclass(slots=True)
class LabState:
    """What `up` built: enough to use the lab from anywhere and to tear it down later.

    JSON-serialisable (`to_dict`/`from_dict`); saved as `state.json` in the state dir.
    """

    name: str
    state_dir: str
    namespaces: dict[str, str]
    node_address: str
    node_gateway: str
    nameserver: str
    ca_bundle: str
    other_ca_bundle: str
    hosts: dict[str, str]
    pids: dict[str, int]
    spec: dict[str, Any]
    dns_names: dict[str, str] = field(default_factory=dict)
    up_seconds: float = 0.0

    @property
    def node_namespace(self) -> str:
        return self.namespaces["node"]

    def lab_spec(self) -> LabSpec:
        """The spec this lab was built from."""
        return spec_from_dict(self.spec)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> LabState:
        try:
            return cls(**document)
        except TypeError as exc:
            raise LabStateError(f"lab state is not in the expected form: {exc}") from exc

    def save(self) -> None:
        """Write atomically, so a crash never leaves half a state file."""
        path = Path(self.state_dir) / STATE_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        temporary.replace(path)


def load_state(name: str, state_dir: str | os.PathLike[str] | None = None) -> LabState:
    """Read a lab's state; `LabStateError` when it has none (never brought up, or down)."""
    directory = _state_dir(name, state_dir)
    path = directory / STATE_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabStateError(f"lab {name} is not up (no {path})") from None
    except (OSError, ValueError) as exc:
        raise LabStateError(f"cannot read lab state {path}: {exc}") from exc
    return LabState.from_dict(document)


def _state_dir(name: str, state_dir: str | os.PathLike[str] | None) -> Path:
    return Path(state_dir) if state_dir is not None else default_state_dir(name)


def up(spec: LabSpec, state_dir: str | os.PathLike[str] | None = None) -> LabState:
    """Build the lab described by `spec` (cleaning up any earlier one of the same name)."""
    tools = system.find_tools()
    directory = _state_dir(spec.name, state_dir)
    down(spec.name, directory)
    started = time.perf_counter()
    try:
        state = _build(spec, directory, tools)
    except BaseException:
        down(spec.name, directory)
        raise
    state.up_seconds = round(time.perf_counter() - started, 3)
    state.save()
    return state


def _build(spec: LabSpec, directory: Path, tools: system.Tools) -> LabState:
    plan = plan_addresses(spec)
    ns: dict[str, str] = {role: render.namespace(spec.name, role) for role in render.ROLES}
    workers = render.endpoint_worker_count(len(spec.hosts), os.cpu_count() or 1)
    authorities = _write_files(spec, plan, directory, ns, workers)
    system.run([tools.ip, "-batch", "-"], "creating namespaces", stdin=render.root_batch(spec))
    system.run_parallel(
        [
            system.Step([tools.ip, "-n", ns[role], "-batch", "-"], f"configuring {ns[role]}", text)
            for role, text in render.namespace_batches(spec, plan).items()
        ]
    )
    dnsmasq_argv = render.dnsmasq_argv(
        tools.dnsmasq,
        str(directory / "dnsmasq.conf"),
        str(directory / "dnsmasq.pid"),
        str(directory / "dnsmasq.log"),
        plan.nameserver,
    )
    dnsmasq = _start(
        [tools.ip, "netns", "exec", ns["dns"], *dnsmasq_argv],
        directory / "dnsmasq.log",
        capture_ready=False,
    )
    in_svc = [tools.ip, "netns", "exec", ns["svc"], sys.executable, "-m", ENDPOINT_MODULE]
    endpoints = {
        f"endpoints-{index}": _start(
            [*in_svc, str(directory / f"endpoints-{index}.json")],
            directory / f"endpoints-{index}.log",
            capture_ready=True,
        )
        for index in range(workers)
    }
    in_fw = [tools.ip, "netns", "exec", ns["fw"]]
    firewall_steps = [
        system.Step([*in_fw, "sysctl", "-qw", "net.ipv4.ip_forward=1"], "enabling forwarding"),
        system.Step([*in_fw, tools.nft, "-f", str(directory / "fw.nft")], "loading the firewall"),
    ]
    if spec.dns == "drop":
        drop_rule = [tools.nft, "-f", str(directory / "dns-drop.nft")]
        firewall_steps.append(
            system.Step(
                [tools.ip, "netns", "exec", ns["dns"], *drop_rule], "loading the DNS drop rule"
            )
        )
    system.run_parallel(firewall_steps)
    deadline = time.monotonic() + 5.0 + len(spec.hosts) / 50
    _wait_for_pidfile(dnsmasq, directory / "dnsmasq.pid", directory / "dnsmasq.log", deadline)
    for role, process in endpoints.items():
        _wait_for_ready_line(process, directory / f"{role}.log", deadline)
    return LabState(
        name=spec.name,
        state_dir=str(directory),
        namespaces=dict(ns),
        node_address=plan.node,
        node_gateway=plan.node_gateway,
        nameserver=plan.nameserver,
        ca_bundle=str(authorities.lab.cert),
        other_ca_bundle=str(authorities.other.cert),
        hosts=dict(plan.hosts),
        pids={"dnsmasq": dnsmasq.pid, **{role: p.pid for role, p in endpoints.items()}},
        spec=spec_to_dict(spec),
        dns_names={h.name: privatelink_name(h.name) for h in spec.hosts if h.privatelink},
    )


def _write_files(
    spec: LabSpec, plan: AddressPlan, directory: Path, ns: dict[str, str], workers: int
) -> Authorities:
    """Everything the servers read, rendered before any namespace exists."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "certs").mkdir(exist_ok=True)
        authorities = create_authorities(directory)
        authority_paths = {
            role: {"cert": str(authority.cert), "key": str(authority.key)}
            for role, authority in (("lab", authorities.lab), ("other", authorities.other))
        }
        files = {
            "dnsmasq.conf": render.dnsmasq_config(spec, plan),
            "fw.nft": render.firewall_ruleset(spec, plan),
            "dns-drop.nft": render.dns_drop_ruleset(),
        }
        configs = render.endpoint_configs(
            spec, plan, authority_paths, str(directory / "certs"), workers
        )
        for index, config in enumerate(configs):
            files[f"endpoints-{index}.json"] = json.dumps(config)
        for filename, text in files.items():
            (directory / filename).write_text(text, encoding="utf-8")
        for role in ("node", "fw"):
            system.write_netns_resolv_conf(ns[role], render.resolv_conf(plan))
    except OSError as exc:
        raise LabError(f"cannot write lab files under {directory}: {exc}") from exc
    return authorities


def _start(argv: Sequence[str], log_path: Path, *, capture_ready: bool) -> subprocess.Popen[bytes]:
    """Start a server in its own session (so its process group can be stopped as one)."""
    env = dict(os.environ)
    package_root = str(Path(aksflight.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    try:
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if capture_ready else subprocess.DEVNULL,
                stderr=log,
                env=env,
                start_new_session=True,
            )
    except OSError as exc:
        raise LabCommandError(
            f"cannot start {argv[4] if len(argv) > 4 else argv[0]}: {exc}"
        ) from exc
    _STARTED[process.pid] = process
    return process


def _log_tail(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip() if lines else "no log output"


def _wait_for_pidfile(
    process: subprocess.Popen[bytes], pid_path: Path, log_path: Path, deadline: float
) -> None:
    """dnsmasq writes its pid file after binding its sockets: then it answers queries."""
    while not (pid_path.exists() and pid_path.stat().st_size > 0):
        if process.poll() is not None:
            raise LabCommandError(
                f"dnsmasq exited with {process.returncode}: {_log_tail(log_path)}"
            )
        if time.monotonic() > deadline:
            raise LabCommandError(f"dnsmasq did not start in time: {_log_tail(log_path)}")
        time.sleep(0.002)


def _wait_for_ready_line(process: subprocess.Popen[bytes], log_path: Path, deadline: float) -> None:
    """The endpoint server prints `ready` once every listener is bound, then closes stdout."""
    assert process.stdout is not None
    received = b""
    while b"\n" not in received:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LabCommandError(f"endpoint server did not start in time: {_log_tail(log_path)}")
        readable, _, _ = select.select([process.stdout], [], [], remaining)
        if readable:
            chunk = os.read(process.stdout.fileno(), 64)
            if not chunk:
                process.wait(timeout=5)
                raise LabCommandError(
                    f"endpoint server exited with {process.returncode}: {_log_tail(log_path)}"
                )
            received += chunk
    process.stdout.close()
    if received.strip() != b"ready":
        raise LabCommandError(f"endpoint server said {received.strip()!r}, not ready")


@dataclass(frozen=True, slots=True)
class LabTeardown:
    """What `down` removed (both lists are empty when there was nothing to remove)."""

    name: str
    processes_stopped: list[int]
    namespaces_removed: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _started_by_lab(pid: int, directory: Path) -> bool:
    """A pid from the state file is ours only if its argv points into this state dir
    (after a reboot or a crash the same pid may belong to something else)."""
    marker = str(directory)
    return any(marker in argument for argument in system.cmdline(pid))


def down(name: str, state_dir: str | os.PathLike[str] | None = None) -> LabTeardown:
    """Stop everything of lab `name` and delete its namespaces; safe to call any time."""
    check_lab_name(name)
    tools = system.find_tools()
    directory = _state_dir(name, state_dir)
    try:
        recorded = list(load_state(name, directory).pids.values())
    except LabStateError:
        recorded = []
    stopped = system.stop_processes([p for p in recorded if _started_by_lab(p, directory)])
    namespaces = system.lab_namespaces(tools.ip, name)
    in_namespaces = [pid for ns in namespaces for pid in system.namespace_pids(tools.ip, ns)]
    stopped += system.stop_processes(in_namespaces, grace_s=0.2)
    for pid in [*recorded, *in_namespaces]:
        process = _STARTED.pop(pid, None)
        if process is not None:
            process.wait(timeout=5)
    if namespaces:
        batch = "".join(f"netns del {ns}\n" for ns in namespaces)
        with contextlib.suppress(LabCommandError):
            system.run([tools.ip, "-force", "-batch", "-"], "deleting namespaces", stdin=batch)
        left = system.lab_namespaces(tools.ip, name)
        if left:
            raise LabCommandError(f"lab {name}: cannot delete namespaces {', '.join(left)}")
    for role in render.ROLES:
        system.remove_netns_etc(render.namespace(name, role))
    _remove_state_files(directory)
    return LabTeardown(name=name, processes_stopped=stopped, namespaces_removed=namespaces)


def _remove_state_files(directory: Path) -> None:
    """Delete only what `up` wrote, then the directory if that left it empty."""
    try:
        for filename in _STATE_FILES:
            (directory / filename).unlink(missing_ok=True)
        for pattern in _WORKER_FILE_PATTERNS:
            for path in directory.glob(pattern):
                path.unlink()
        (directory / STATE_FILE).with_suffix(".tmp").unlink(missing_ok=True)
        certs = directory / "certs"
        if certs.is_dir():
            for pem in certs.glob("*.pem"):
                pem.unlink()
            certs.rmdir()
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
    except OSError as exc:
        raise LabError(f"cannot remove lab files under {directory}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class LabStatus:
    """Whether a lab is whole: its state, which namespaces exist, which servers run."""

    name: str
    state_dir: str
    running: bool
    namespaces: list[str]
    missing_namespaces: list[str]
    processes: dict[str, bool]
    state: LabState | None

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document["state"] = self.state.to_dict() if self.state is not None else None
        return document


def status(name: str, state_dir: str | os.PathLike[str] | None = None) -> LabStatus:
    """Describe lab `name`; `running` is true only if every namespace and server is there."""
    check_lab_name(name)
    tools = system.find_tools()
    directory = _state_dir(name, state_dir)
    try:
        state: LabState | None = load_state(name, directory)
    except LabStateError:
        state = None
    present = system.lab_namespaces(tools.ip, name)
    expected = [render.namespace(name, role) for role in render.ROLES]
    missing = [ns for ns in expected if ns not in present]
    processes = (
        {
            role: system.is_alive(pid) and _started_by_lab(pid, directory)
            for role, pid in state.pids.items()
        }
        if state is not None
        else {}
    )
    running = state is not None and not missing and all(processes.values())
    return LabStatus(
        name=name,
        state_dir=str(directory),
        running=running,
        namespaces=present,
        missing_namespaces=missing,
        processes=processes,
        state=state,
    )


def exec_in_node(
    state: LabState,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    timeout: float | None = None,
    capture: bool = True,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` in the node namespace (as `aksflight check` would run on an AKS node).

    `env` is added to this process's environment. The node's system resolver is the lab's
    (`ip netns exec` mounts the lab's resolv.conf). Output is captured as text unless
    `capture=False`, which passes the terminal through.
    """
    if not argv:
        raise LabSpecError("exec needs a command to run")
    tools = system.find_tools()
    if not (system.NETNS_DIR / state.node_namespace).exists():
        raise LabStateError(f"lab {state.name} is not up (no namespace {state.node_namespace})")
    merged = {**os.environ, **(env or {})}
    try:
        return subprocess.run(
            [tools.ip, "netns", "exec", state.node_namespace, *argv],
            env=merged,
            input=stdin,
            capture_output=capture,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabCommandError(f"{argv[0]} in {state.node_namespace} took over {timeout} s") from exc
    except OSError as exc:
        raise LabCommandError(f"cannot run {argv[0]} in {state.node_namespace}: {exc}") from exc
