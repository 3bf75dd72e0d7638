"""The router's data plane, compiled with mypyc when it was installed so, or plain Python.

The modules below are what every proxied request runs through. `setup.py` compiles them with
mypyc (the compiler that ships with mypy), which takes the interpreter's frame evaluation out
of the request path: about a third of the router's CPU per request (docs/router.md,
"Compiled with mypyc"). They stay ordinary, fully typed Python and the same tests run on
both builds; the compiled one also enforces the annotations at run time (a value of another
type is a TypeError) and its classes take no attributes from outside.

The compiled modules are used only while the package's sources are the ones they were
compiled from (all of them: the compiled code also relies on the types of the modules it
imports, such as the configuration's): the build records the SHA-256 of every `.py` file of
the package next to the compiled modules, and `select_build` (run by `router/__init__.py`
before any of them is imported) switches all six to their sources when a file was edited,
added or removed since, or when `AKSFLIGHT_ROUTER_PURE=1` asks for it (profilers see into
plain Python only). So an edited checkout never runs old code.

This module is read by `setup.py` before anything is installed: standard library only.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

COMPILED_MODULES = (
    "router.fastpath",
    "router.http11",
    "router.messages",
    "router.pool",
    "router.upstream",
    "router.wire",
)
GROUP_MODULE = "router_native__mypyc"  # the shared library the compiled modules call into
BUILD_RECORD = "native-build.json"
PURE_ENV = "AKSFLIGHT_ROUTER_PURE"
PACKAGE_DIR = Path(__file__).resolve().parent


def source_path(module: str, package_dir: Path = PACKAGE_DIR) -> Path:
    return package_dir / f"{module.rpartition('.')[2]}.py"


def source_digests(package_dir: Path = PACKAGE_DIR) -> dict[str, str]:
    """SHA-256 of every `.py` file of the package: what the build records, imports compare."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(package_dir.glob("*.py"))
    }


def compiled_path(module: str, package_dir: Path = PACKAGE_DIR) -> Path | None:
    leaf = module.rpartition(".")[2]
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = package_dir / f"{leaf}{suffix}"
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class Build:
    """How the data plane runs in this process: `compiled`, or plain Python and why."""

    compiled: bool
    reason: str


def inspect_build(
    package_dir: Path = PACKAGE_DIR,
    environ: Mapping[str, str] = os.environ,
    group_module: str = GROUP_MODULE,
) -> Build:
    """Whether the compiled modules can be used, without importing any of them."""
    present = [module for module in COMPILED_MODULES if compiled_path(module, package_dir)]
    if not present:
        return Build(False, "installed without compiling (plain Python)")
    if environ.get(PURE_ENV) == "1":
        return Build(False, f"{PURE_ENV}=1")
    if len(present) < len(COMPILED_MODULES):
        missing = sorted(set(COMPILED_MODULES) - set(present))
        return Build(False, f"compiled modules missing: {', '.join(missing)}")
    if importlib.util.find_spec(group_module) is None:
        return Build(False, f"the compiled modules' library {group_module} is not importable")
    try:
        recorded = json.loads((package_dir / BUILD_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = None
    if not isinstance(recorded, dict):
        return Build(False, f"no readable {BUILD_RECORD} beside the compiled modules")
    current = source_digests(package_dir)
    changed = sorted(
        name for name in recorded.keys() | current.keys() if recorded.get(name) != current.get(name)
    )
    if changed:
        named = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if changed[3:] else "")
        return Build(False, f"changed since compiled: {named} (rebuild: make native)")
    return Build(True, "compiled with mypyc")


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Imports the listed modules from their `.py` files, ahead of the compiled ones."""

    def __init__(self, modules: Sequence[str], package_dir: Path) -> None:
        self._modules = frozenset(modules)
        self._package_dir = package_dir

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self._modules:
            return None
        return importlib.util.spec_from_file_location(
            fullname, source_path(fullname, self._package_dir)
        )


@functools.cache
def select_build() -> Build:
    """Decided once per process, before the first compiled module is imported; later calls
    return the same answer (the metrics and the start-up log report it)."""
    build = inspect_build()
    if not build.compiled and any(compiled_path(m) for m in COMPILED_MODULES):
        sys.meta_path.insert(0, _SourcesFirst(COMPILED_MODULES, PACKAGE_DIR))
    return build
