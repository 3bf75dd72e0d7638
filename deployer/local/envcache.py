"""The local target's environment cache: one virtualenv per content hash of its definition.

As v1's image cache: hash the definition (Python version + requirements, the model server
included) → look the hash up → build only when it is missing. A build is never repeated:

- **cached**: `<cache>/<hash>/env.json` exists (written last, so a build killed half-way is
  discarded and redone) → milliseconds.
- **seeded**: a *seed* (an existing model-server virtualenv, e.g. the one `make` builds)
  already satisfies every requirement, checked by pip itself offline
  (`pip install --dry-run --no-index`) → the seed is used as is, about a second, once.
- **layered**: a seed satisfies part of it → a new virtualenv that sees the seed's packages
  (a `.pth` file) gets only the missing ones from pip (its index, `--find-links` or cache).
- **built**: no seed → a fresh virtualenv and `pip install` of everything (minutes).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deployer._files import read_json, write_json_atomic
from deployer.errors import EnvironmentBuildError
from deployer.inference import Environment

SEED_VARIABLE = "AKSFLIGHT_MODELSERVER_VENV"
MODEL_SERVER_MODULE = "azureml_inference_server_http"
_VERSION_SCRIPT = "import sys; print(f'{sys.version_info.major}.{sys.version_info.minor}')"


@dataclass(frozen=True)
class LocalEnvironment:
    """A ready environment: its hash, interpreter, and how it was obtained this time."""

    hash: str
    python: Path
    how: str  # cached | seeded | layered | built
    seconds: float

    def server_command(self, entry_script: str) -> list[str]:
        """The model server's command line; `{port}` is filled in by the router."""
        return [
            str(self.python),
            "-m",
            MODEL_SERVER_MODULE,
            "--entry_script",
            entry_script,
            "--port",
            "{port}",
        ]


def default_seeds(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The model-server virtualenv named by AKSFLIGHT_MODELSERVER_VENV, else the one a
    source checkout's `make` builds next to the packages."""
    env = os.environ if environ is None else environ
    seeds = []
    if env.get(SEED_VARIABLE):
        seeds.append(Path(env[SEED_VARIABLE]))
    checkout = Path(__file__).resolve().parents[2] / ".venv-modelserver"
    if checkout.is_dir() and checkout not in seeds:
        seeds.append(checkout)
    return seeds


def _run(command: Sequence[str], log: Path, what: str, timeout: float) -> None:
    with log.open("ab") as handle:
        handle.write(f"$ {' '.join(command)}\n".encode())
        handle.flush()
        try:
            result = subprocess.run(
                command, stdout=handle, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EnvironmentBuildError(f"{what}: {exc}", str(log)) from exc
    if result.returncode != 0:
        raise EnvironmentBuildError(
            f"{what} failed (exit code {result.returncode}); see {log}", str(log)
        )


def _site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages"))
    if not found:
        raise EnvironmentBuildError(f"{venv} has no site-packages directory")
    return found[0]


class EnvironmentCache:
    """Resolves an `Environment` to a ready virtualenv under `root`, building at most once."""

    def __init__(
        self,
        root: Path,
        seeds: Sequence[Path] | None = None,
        base_python: str | None = None,
        build_timeout: float = 3600.0,
    ) -> None:
        self.root = root
        self.seeds = list(default_seeds() if seeds is None else seeds)
        self.base_python = base_python or getattr(sys, "_base_executable", sys.executable)
        self.build_timeout = build_timeout

    def entry(self, digest: str) -> Path:
        return self.root / digest

    def lookup(self, environment: Environment) -> LocalEnvironment | None:
        """The cached environment for this definition, or None (no I/O beyond one file)."""
        started = time.perf_counter()
        record = read_json(self.entry(environment.local_hash()) / "env.json")
        if not isinstance(record, dict) or not Path(str(record.get("python"))).exists():
            return None
        return LocalEnvironment(
            environment.local_hash(),
            Path(record["python"]),
            "cached",
            time.perf_counter() - started,
        )

    @contextlib.contextmanager
    def _locked(self, digest: str) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / f"{digest}.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def resolve(self, environment: Environment) -> LocalEnvironment:
        """Look up, else seed, layer or build (serialised per hash across processes)."""
        found = self.lookup(environment)
        if found is not None:
            return found
        digest = environment.local_hash()
        with self._locked(digest):
            found = self.lookup(environment)  # another process may have built it meanwhile
            if found is not None:
                return found
            started = time.perf_counter()
            entry = self.entry(digest)
            shutil.rmtree(entry, ignore_errors=True)  # what a killed build left behind
            entry.mkdir(parents=True)
            log = entry / "build.log"
            requirements = entry / "requirements.txt"
            requirements.write_text("\n".join(environment.local_requirements()) + "\n")
            python, how = self._obtain(environment, entry, requirements, log)
            write_json_atomic(
                entry / "env.json",
                {
                    "hash": digest,
                    "definition": environment.local_definition(),
                    "python": str(python),
                    "how": how,
                    "seconds": round(time.perf_counter() - started, 3),
                },
            )
            return LocalEnvironment(digest, python, how, time.perf_counter() - started)

    def _obtain(
        self, environment: Environment, entry: Path, requirements: Path, log: Path
    ) -> tuple[Path, str]:
        wanted_python = environment.local_definition()["python"]
        partial: Path | None = None
        for seed in self.seeds:
            python = seed / "bin" / "python"
            if not python.exists() or self._python_version(python) != wanted_python:
                continue
            missing = self._missing(python, requirements, log)
            if missing is None:
                continue
            if not missing:
                return python, "seeded"
            partial = partial or seed
        venv = entry / "venv"
        base = str(partial / "bin" / "python") if partial else str(self.base_python)
        _run([base, "-m", "venv", str(venv)], log, "creating the virtualenv", 600)
        if partial is not None:
            (_site_packages(venv) / "_aksflight_seed.pth").write_text(
                f"{_site_packages(partial)}\n"
            )
        _run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-r", str(requirements)],
            log,
            "pip install",
            self.build_timeout,
        )
        return venv / "bin" / "python", "layered" if partial else "built"

    @staticmethod
    def _python_version(python: Path) -> str:
        try:
            result = subprocess.run(
                [str(python), "-c", _VERSION_SCRIPT],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return result.stdout.strip()

    @staticmethod
    def _missing(python: Path, requirements: Path, log: Path) -> list[str] | None:
        """What pip would have to install into the seed (offline), or None when it cannot say."""
        command = [
            str(python),
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-index",
            "--quiet",
            "--report",
            "-",
            "-r",
            str(requirements),
        ]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=120, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        with log.open("a") as handle:
            handle.write(f"$ {' '.join(command)}\n{result.stderr}")
        if result.returncode != 0:
            return ["(not all requirements are installed in the seed)"]
        try:
            report = json.loads(result.stdout)
        except ValueError:
            return None
        return [str(item.get("metadata", {}).get("name")) for item in report.get("install", [])]
