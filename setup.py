"""Build: the router's data plane compiled with mypyc (the modules router/native.py lists).

Everything else is declared in pyproject.toml. `AKSFLIGHT_ROUTER_PURE=1` at build time
skips the compilation (no C compiler needed); the router then runs as plain Python, at
about twice the CPU per request (docs/router.md). The build writes the SHA-256 of every
compiled source beside the compiled modules, so an import can tell a stale build from a
current one (router/native.py).
"""

from __future__ import annotations

import functools
import json
import os
import runpy
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
NATIVE = runpy.run_path(str(HERE / "router" / "native.py"))


# The commands that build extensions (setup.py is also run for metadata only).
BUILDING = {"build", "build_ext", "bdist_wheel", "editable_wheel", "install", "develop"}


@functools.cache
def native_extensions() -> list[object]:
    if os.environ.get(NATIVE["PURE_ENV"]) == "1":
        return []
    from mypyc.build import mypycify

    sources = [str(NATIVE["source_path"](m).relative_to(HERE)) for m in NATIVE["COMPILED_MODULES"]]
    # Third-party stubs may be absent in an isolated build environment; the compiled code
    # treats those modules as untyped, which costs nothing: they are C extensions anyway.
    group = NATIVE["GROUP_MODULE"].removesuffix("__mypyc")
    return mypycify(["--ignore-missing-imports", *sources], opt_level="3", group_name=group)


class BuildNative(build_ext):
    """Compiles the data plane when extensions are built, not each time setup.py is read.

    pip runs setup.py several times (requirements, metadata, build) and setuptools finalizes
    this command for its file lists each time; mypyc's code generation type-checks the
    modules (about 30 s), so it replaces the placeholder below only in a process that builds,
    and once. Then the build records which sources the compiled modules were built from.
    """

    def finalize_options(self) -> None:
        if BUILDING & set(self.distribution.commands):
            self.distribution.ext_modules = native_extensions()
        super().finalize_options()

    def run(self) -> None:
        super().run()
        if not self.extensions:
            return
        record = json.dumps(NATIVE["source_digests"](HERE / "router"), indent=2) + "\n"
        places = {Path(self.get_ext_fullpath(NATIVE["COMPILED_MODULES"][0])).parent}
        if self.inplace or getattr(self, "editable_mode", False):
            places.add(HERE / "router")
        for place in places:
            place.mkdir(parents=True, exist_ok=True)
            (place / NATIVE["BUILD_RECORD"]).write_text(record, encoding="utf-8")


# Declares that the distribution has compiled parts (a platform wheel; build_ext runs).
PLACEHOLDER = [] if os.environ.get(NATIVE["PURE_ENV"]) == "1" else [Extension("router_native", [])]
setup(ext_modules=PLACEHOLDER, cmdclass={"build_ext": BuildNative})
