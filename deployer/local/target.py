"""The `local` target: the router and the model replicas run as processes on this machine.

A deploy resolves the environment (cached virtualenv), writes the release (app + models)
and the service's record, rewrites the router's configuration from every record, and makes
sure the background supervisor runs the router. A new service is picked up by the router's
own reload; a changed or removed one makes the supervisor restart the router, because the
router keeps a removed service's replicas otherwise. An unchanged re-deploy writes nothing.
Every file is written atomically, so a deploy killed at any point and run again converges.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from deployer._files import read_json, write_atomic, write_json_atomic
from deployer.credentials import (
    SigningKey,
    issue_token,
    new_key,
    new_signing_key,
    regenerate,
)
from deployer.errors import DeploymentFailed, ServiceNotFound, TargetError
from deployer.inference import MODEL_ROOT, Environment, InferenceConfig, Model, model_dir_env
from deployer.local.envcache import EnvironmentCache
from deployer.local.layout import (
    Layout,
    kill_group,
    pid_alive,
    process_cmdline,
    read_pid,
    sweep_replicas,
)
from deployer.local.probe import LocalProbe
from deployer.local.records import (
    ROUTER_HOST,
    ServiceRecord,
    all_records,
    bootstrap_config,
    router_config,
    router_port,
)
from deployer.package import package
from deployer.request import DeployRequest, check_service_name
from deployer.states import ServiceInfo, ServiceState, scoring_paths

if TYPE_CHECKING:
    from rules.plan import Plan

Say = Callable[[str], None]
KEPT_LOGS = 8
SUPERVISOR_MODULE = "deployer.local.supervisor"


def _quiet(_: str) -> None:
    return None


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((ROUTER_HOST, 0))
        return int(probe.getsockname()[1])


class LocalTarget:
    """Deploys to this machine. `layout` is where state goes (default: the user's state
    directory); `cache` resolves environments (default: under the state directory)."""

    name = "local"

    def __init__(
        self,
        layout: Layout | None = None,
        cache: EnvironmentCache | None = None,
        port: int | None = None,
    ) -> None:
        self.layout = layout or Layout.default()
        self.cache = cache or EnvironmentCache(self.layout.envs)
        self._port = port
        self.probe = LocalProbe(self.layout)
        self._early: subprocess.Popen[bytes] | None = None

    # --- the router and its supervisor ----------------------------------------------------

    @property
    def base_url(self) -> str:
        port = router_port(self.layout) or self._port or 0
        return f"http://{ROUTER_HOST}:{port}"

    def supervisor_pid(self) -> int | None:
        """The running supervisor's pid (a stale pid file, or a reused pid, is not it)."""
        pid = read_pid(self.layout.supervisor_pid)
        if pid is None or not pid_alive(pid):
            return None
        return pid if SUPERVISOR_MODULE in process_cmdline(pid) else None

    def _write_router_config(self, port: int) -> None:
        config = router_config(self.layout, port, all_records(self.layout))
        write_atomic(
            self.layout.router_config,
            config.model_dump_json(indent=2, exclude_none=True),
            mode=0o600,
        )

    def _start_supervisor(self, *, wait: bool = True) -> subprocess.Popen[bytes]:
        self.layout.ensure()
        with self.layout.supervisor_log.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", SUPERVISOR_MODULE, "--state", str(self.layout.root)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.layout.root,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        if not wait:
            return process
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.supervisor_pid() is None:
            time.sleep(0.01)
        if self.supervisor_pid() is None:
            raise TargetError(
                f"the local supervisor did not start; see {self.layout.supervisor_log}"
            )
        return process

    def _start_early(self) -> None:
        """A stopped router starts now, with the configuration it has (or none), so that its
        start-up overlaps with the rest of the deploy; the new configuration is picked up by
        the router's reload."""
        with self.layout.locked():
            if self.supervisor_pid() is not None:
                return
            if router_port(self.layout) is None:
                port = self._port or _free_port()
                write_json_atomic(
                    self.layout.router_config, bootstrap_config(self.layout, port), mode=0o600
                )
            self._early = self._start_supervisor(wait=False)

    def _await_early_start(self) -> bool:
        """True once the supervisor started by `_start_early` runs (or another one does)."""
        early, self._early = self._early, None
        if early is None:
            return False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.supervisor_pid() is not None:
                return True
            if early.poll() is not None and self.supervisor_pid() is None:
                return False
            time.sleep(0.01)
        return False

    def _restart_router(self) -> None:
        """Ask the supervisor for a fresh router (and replicas); return once it answers."""
        import signal

        pid = self.supervisor_pid()
        if pid is None:
            self._start_supervisor()
            return
        before = self.probe.restarts()
        os.kill(pid, signal.SIGUSR1)
        self.probe.wait_restarted(before, self.base_url)

    # --- deploy ------------------------------------------------------------------------------

    def deploy(
        self,
        request: DeployRequest,
        *,
        wait: bool = True,
        timeout: float = 600.0,
        say: Say = _quiet,
        plan: Plan | None = None,
    ) -> ServiceInfo:
        """Deploy (or update) `request`; with `wait`, return once Healthy or raise
        DeploymentFailed with a diagnosis (mapped onto `plan`'s checks when given)."""
        environment = request.inference.environment
        started = time.perf_counter()
        log_offset = self.probe.router_log_size()  # before the router can say anything new
        self._start_early()
        env = self.cache.resolve(environment)
        say(f"environment {env.hash}: {env.how} in {env.seconds:.2f} s")
        built = package(request.inference, request.models, request.fingerprint() + env.hash)
        with self.layout.locked():
            old = ServiceRecord.load(self.layout, request.name)
            unchanged = old is not None and old.digest == built.digest
            if (
                unchanged
                and self.supervisor_pid() is not None
                and self.probe.ready(self.base_url, request.name) >= request.config.initial_replicas
            ):
                say(f"{request.name} is unchanged (release {built.digest}); nothing to do")
                return self.info(request.name)
            record = self._record(request, built.digest, env.python, env.hash, old)
            release = Path(record.release)
            if not release.is_dir():
                self._write_release(built, release)
            for directory in ("home", "logs", "run"):
                (self.layout.service(request.name) / directory).mkdir(parents=True, exist_ok=True)
            record.extra["log_offset"] = log_offset
            record.save(self.layout)
            port = router_port(self.layout) or self._port or _free_port()
            self._write_router_config(port)
            if self.supervisor_pid() is None and not self._await_early_start():
                self._start_supervisor()
            elif old is not None and not unchanged:
                self._restart_router()
            say(f"release {built.digest} written; waiting for {request.name}")
            if not wait:
                return self.info(request.name)
            self.wait(request.name, timeout, say=say, plan=plan)
            self._prune(request.name, keep=built.digest)
        say(f"{request.name} Healthy in {time.perf_counter() - started:.2f} s")
        return self.info(request.name)

    def _record(
        self,
        request: DeployRequest,
        digest: str,
        python: Path,
        env_hash: str,
        old: ServiceRecord | None,
    ) -> ServiceRecord:
        config = request.config
        keys: list[str] | None = None
        signing: dict[str, str] | None = None
        if config.auth_mode == "key":
            previous = old.keys if old and old.keys else None
            keys = [
                config.primary_key or (previous[0] if previous else new_key()),
                config.secondary_key or (previous[1] if previous else new_key()),
            ]
        elif config.auth_mode == "token":
            signer = (old.signer if old else None) or new_signing_key()
            signing = {"private_pem": signer.private_pem, "public_pem": signer.public_pem}
        release = self.layout.service(request.name) / "releases" / digest
        now = time.time()
        return ServiceRecord(
            name=request.name,
            digest=digest,
            release=str(release),
            entry_script=request.inference.entry_name,
            model_dir=model_dir_env(request.models, str(release)),
            python=str(python),
            env_hash=env_hash,
            auth=config.auth_mode,
            deploy_config=config.given(),
            models=[
                {"name": m.name, "version": m.version, "file": m.file_name, "uri": m.uri}
                for m in request.models
            ],
            requirements=list(request.inference.environment.pip_requirements),
            image=request.inference.environment.image,
            keys=keys,
            signing_key=signing,
            created=old.created if old else now,
            updated=now,
        )

    def _write_release(self, built: object, release: Path) -> None:
        from deployer.package import Package

        assert isinstance(built, Package)
        release.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=release.parent, prefix=f".{release.name}."))
        try:
            built.write(staging / "app", staging)
            os.replace(staging, release)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _prune(self, name: str, keep: str) -> None:
        """Drop older releases and all but the newest replica logs."""
        releases = self.layout.service(name) / "releases"
        for path in releases.iterdir() if releases.is_dir() else ():
            if path.name != keep:
                shutil.rmtree(path, ignore_errors=True)
        logs = sorted(
            (self.layout.service(name) / "logs").glob("replica-*.log"),
            key=lambda p: p.stat().st_mtime,
        )
        for path in logs[:-KEPT_LOGS]:
            path.unlink(missing_ok=True)

    # --- waiting ---------------------------------------------------------------------------

    def wait(
        self,
        name: str,
        timeout: float,
        *,
        say: Say = _quiet,
        plan: Plan | None = None,
    ) -> None:
        """Until the service has its replicas ready; DeploymentFailed with a diagnosis
        (router log lines from before the last deploy of the service do not count)."""
        record = self._require(name)
        log_offset = int(record.extra.get("log_offset", 0))
        wanted = record.config.initial_replicas
        deadline = time.monotonic() + timeout
        last = -1
        while True:
            if self.supervisor_pid() is None:
                raise DeploymentFailed(
                    f"{name}: the local supervisor is not running; "
                    f"see {self.layout.supervisor_log}",
                    ServiceState.FAILED.value,
                )
            ready = self.probe.ready(self.base_url, name)
            if ready != last and ready >= 0:
                say(f"{name}: {ready}/{wanted} replicas ready")
                last = ready
            if ready >= wanted:
                return
            diagnosis = self.probe.failure(name, log_offset, plan)
            if diagnosis is not None:
                raise DeploymentFailed(
                    f"{name}: {diagnosis.cause}: {diagnosis.message}",
                    diagnosis.state.value,
                    diagnosis,
                )
            if time.monotonic() > deadline:
                raise DeploymentFailed(
                    f"{name}: not Healthy after {timeout:g} s ({max(ready, 0)}/{wanted} replicas"
                    f" ready); see `aksflight service logs {name}`",
                    ServiceState.UNHEALTHY.value,
                )
            time.sleep(0.05)

    # --- service operations ------------------------------------------------------------------

    def _require(self, name: str) -> ServiceRecord:
        check_service_name(name)
        record = ServiceRecord.load(self.layout, name)
        if record is None:
            raise ServiceNotFound(name, "the local target")
        return record

    def info(self, name: str) -> ServiceInfo:
        record = self._require(name)
        scoring, swagger = scoring_paths(self.base_url, name)
        state, detail = self._state(record)
        return ServiceInfo(
            name=name,
            state=state,
            scoring_uri=scoring,
            swagger_uri=swagger,
            auth=record.auth,
            target=self.name,
            detail=detail,
            extra={"release": record.digest, "environment": record.env_hash},
        )

    def _state(self, record: ServiceRecord) -> tuple[ServiceState, str]:
        if self.supervisor_pid() is None:
            return (
                ServiceState.UNHEALTHY,
                "the local router is stopped (`aksflight deploy` starts it)",
            )
        ready = self.probe.ready(self.base_url, record.name)
        wanted = record.config.initial_replicas
        if ready >= wanted:
            return ServiceState.HEALTHY, f"{ready} replicas ready"
        if self.probe.failure(record.name, 0, only_current=True) is not None:
            return ServiceState.FAILED, "a replica failed to start; see `aksflight service logs`"
        if ready > 0:
            return ServiceState.UNHEALTHY, f"{ready}/{wanted} replicas ready"
        return ServiceState.TRANSITIONING, "replicas starting"

    def needs_router_install(self) -> bool:
        """The local router is started by the deploy itself; nothing to install."""
        return False

    def last_request(self, name: str) -> DeployRequest:
        """The deployed service as a request again, from its record and release (for update)."""
        record = self._require(name)
        release = Path(record.release)
        models = tuple(
            Model(uri=m["uri"], name=m["name"], version=m["version"])
            if m.get("uri")
            else Model(
                path=release / MODEL_ROOT / m["name"] / str(m["version"]) / m["file"],
                name=m["name"],
                version=m["version"],
            )
            for m in record.models
        )
        environment = Environment(image=record.image, pip_requirements=tuple(record.requirements))
        inference = InferenceConfig(record.entry_script, release / "app", environment)
        return DeployRequest(name, models, inference, record.config)

    def list(self) -> list[ServiceInfo]:
        return [self.info(record.name) for record in all_records(self.layout)]

    def keys(self, name: str) -> tuple[str, str]:
        record = self._require(name)
        if record.key_pair is None:
            raise TargetError(f"{name} does not use key auth (auth: {record.auth})")
        return record.key_pair

    def token(self, name: str) -> tuple[str, datetime]:
        record = self._require(name)
        signer: SigningKey | None = record.signer
        if signer is None:
            raise TargetError(f"{name} does not use token auth (auth: {record.auth})")
        return issue_token(signer, name)

    def regen_key(self, name: str, which: str, value: str | None = None) -> tuple[str, str]:
        with self.layout.locked():
            record = self._require(name)
            current = self.keys(name)
            record.keys = list(regenerate(current, which, value))
            record.updated = time.time()
            record.save(self.layout)
            self._write_router_config(router_port(self.layout) or _free_port())
        if self.supervisor_pid() is not None:
            self.probe.wait_key_accepted(self.base_url, name, record.keys[0], record.keys[1])
        return self.keys(name)

    def logs(self, name: str, tail: int = 5000, init: bool = False) -> str:
        record = self._require(name)
        if init:
            build_log = self.layout.envs / record.env_hash / "build.log"
            text = build_log.read_text(errors="replace") if build_log.exists() else ""
            header = f"environment {record.env_hash} ({self._env_how(record)})\n"
            return header + "\n".join(text.splitlines()[-tail:])
        return self.probe.replica_logs(name, tail)

    def _env_how(self, record: ServiceRecord) -> str:
        data = read_json(self.layout.envs / record.env_hash / "env.json")
        return str(data.get("how")) if isinstance(data, dict) else "unknown"

    def delete(self, name: str) -> None:
        """Remove the service: its router entry, replicas, release, logs and record."""
        with self.layout.locked():
            self._require(name)
            shutil.rmtree(self.layout.service(name) / "releases", ignore_errors=True)
            self.layout.record(name).unlink(missing_ok=True)
            remaining = all_records(self.layout)
            if self.supervisor_pid() is not None:
                if remaining:
                    self._write_router_config(router_port(self.layout) or _free_port())
                    self._restart_router()
                else:
                    self._stop_locked()
            sweep_replicas(self.layout, name)
            shutil.rmtree(self.layout.service(name), ignore_errors=True)
            if not remaining:
                self.layout.router_config.unlink(missing_ok=True)
            elif self.supervisor_pid() is None:
                self._write_router_config(router_port(self.layout) or _free_port())

    def stop(self) -> bool:
        """Stop the router and every replica (`aksflight local stop`); True if one ran."""
        with self.layout.locked():
            return self._stop_locked()

    def _stop_locked(self) -> bool:
        pid = self.supervisor_pid()
        if pid is not None:
            kill_group(pid, 20.0)
        status = read_json(self.layout.supervisor_status)
        router_pid = status.get("router_pid") if isinstance(status, dict) else None
        if isinstance(router_pid, int) and pid_alive(router_pid):
            kill_group(router_pid, 10.0)
        sweep_replicas(self.layout)
        self.layout.supervisor_pid.unlink(missing_ok=True)
        self.layout.supervisor_status.unlink(missing_ok=True)
        return pid is not None
