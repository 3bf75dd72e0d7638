"""Build: the router's data plane compiled with mypyc (the modules router/native.py lists).

Everything else is declared in pyproject.toml. `AKSFLIGHT_ROUTER_PURE=1` at build time
skips the compilation (no C compiler needed); the router then runs as plain Python, at
about 1.5 times the CPU per request (docs/router.md). The build writes the SHA-256 of the
router's sources beside the compiled modules, so an import can tell a stale build from a
current one (router/native.py).
"""

from __future__ import annotations

import functools
import json
import os
import runpy
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, CompileError, ExecError

HERE = Path(__file__).resolve().parent
NATIVE = runpy.run_path(str(HERE / "router" / "native.py"))
PURE = os.environ.get(NATIVE["PURE_ENV"]) == "1"
HINT = f"set {NATIVE['PURE_ENV']}=1 to install the router as plain Python"

# The commands that build extensions (setup.py is also run for metadata only).
BUILDING = {
    "build",
    "build_ext",
    "bdist",
    "bdist_wheel",
    "bdist_egg",
    "editable_wheel",
    "install",
    "develop",
}

# mypy's view of the code, the same wherever it is built: the project's own mypy settings
# are for checking, not compiling; third-party packages are not looked up (they may not be
# installed yet, and their types would make the compiled code depend on their versions),
# so the compiled code treats them as untyped, which costs nothing: they are C extensions
# or off the request path. Modules that are imported but not compiled are read for their
# types only.
MYPY_OPTIONS = [
    "--config-file=",
    "--no-site-packages",
    "--ignore-missing-imports",
    "--follow-imports=silent",
    "--python-version=3.11",
]


@functools.cache
def native_extensions() -> list[object]:
    if PURE:
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        raise SystemExit(
            f"compiling the router needs mypyc, which comes with mypy; {HINT}"
        ) from exc
    sources = [str(NATIVE["source_path"](m).relative_to(HERE)) for m in NATIVE["COMPILED_MODULES"]]
    group = NATIVE["GROUP_MODULE"].removesuffix("__mypyc")
    return mypycify([*MYPY_OPTIONS, *sources], opt_level="3", group_name=group)


class NativeDistribution(Distribution):
    """Has compiled parts unless built plain: a platform wheel, and build_ext runs."""

    def has_ext_modules(self) -> bool:
        return not PURE


class BuildNative(build_ext):
    """Compiles the data plane when extensions are built, not each time setup.py is read.

    pip runs setup.py several times (requirements, metadata, build) and setuptools finalizes
    this command for its file lists each time; mypyc's code generation type-checks the
    modules (about 30 s), so it runs only in a process that builds, and once. Then the build
    records which sources the compiled modules were built from.
    """

    def finalize_options(self) -> None:
        if BUILDING & set(self.distribution.commands):
            self.distribution.ext_modules = native_extensions()
        super().finalize_options()

    def run(self) -> None:
        try:
            super().run()
        except (CCompilerError, CompileError, ExecError) as exc:
            raise SystemExit(f"compiling the router failed ({exc}); {HINT}") from exc
        if not self.extensions:
            return
        record = json.dumps(NATIVE["source_digests"](HERE / "router"), indent=2) + "\n"
        places = {Path(self.get_ext_fullpath(NATIVE["COMPILED_MODULES"][0])).parent}
        if self.inplace:  # also set by editable installs
            places.add(HERE / "router")
        for place in places:
            place.mkdir(parents=True, exist_ok=True)
            (place / NATIVE["BUILD_RECORD"]).write_text(record, encoding="utf-8")


setup(distclass=NativeDistribution, cmdclass={"build_ext": BuildNative})
