"""The compiled data plane: used only when it matches its sources, else the sources are.

Unit tests run `inspect_build` on made-up package folders; the subprocess tests import the
real package (compiled by `make`), a copy of it with an edited source, and the sources on
request (AKSFLIGHT_ROUTER_PURE=1).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from router import native
from tests.router.router_support import backend, router, router_config, run

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
PRESENT = "json"  # stands for the compiled modules' shared library where it must be found
ABSENT = "router_native_test_no_such_module"


def package(tmp_path: Path, *, compiled: tuple[str, ...] = native.COMPILED_MODULES) -> Path:
    """A package folder with every compiled module's source, the named ones compiled."""
    folder = tmp_path / "router"
    folder.mkdir()
    for module in native.COMPILED_MODULES:
        leaf = module.rpartition(".")[2]
        (folder / f"{leaf}.py").write_text(f"NAME = {leaf!r}\n")
        if module in compiled:
            (folder / f"{leaf}{SUFFIX}").write_bytes(b"\x7fELF not really")
    return folder


def record(folder: Path) -> None:
    (folder / native.BUILD_RECORD).write_text(json.dumps(native.source_digests(folder)))


def inspect(folder: Path, environ: dict[str, str] | None = None, group: str = PRESENT):
    return native.inspect_build(folder, environ or {}, group_module=group)


def test_a_current_build_is_used(tmp_path: Path) -> None:
    folder = package(tmp_path)
    record(folder)
    assert inspect(folder) == native.Build(True, "compiled with mypyc")


def test_no_compiled_modules_means_plain_python(tmp_path: Path) -> None:
    build = inspect(package(tmp_path, compiled=()))
    assert not build.compiled
    assert "without compiling" in build.reason


def test_an_edited_source_switches_to_the_sources(tmp_path: Path) -> None:
    folder = package(tmp_path)
    record(folder)
    with (folder / "pool.py").open("a") as source:
        source.write("# edited\n")
    build = inspect(folder)
    assert not build.compiled
    assert build.reason == "changed since compiled: pool.py (rebuild: make native)"
    (folder / "added.py").write_text("")
    (folder / "wire.py").unlink()
    (folder / "app.py").write_text("")
    build = inspect(folder)
    assert build.reason.startswith("changed since compiled: added.py, app.py, pool.py and 1 more")


def test_the_environment_asks_for_the_sources(tmp_path: Path) -> None:
    folder = package(tmp_path)
    record(folder)
    build = inspect(folder, {native.PURE_ENV: "1"})
    assert build == native.Build(False, f"{native.PURE_ENV}=1")
    assert inspect(folder, {native.PURE_ENV: "0"}).compiled


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("no record", f"no readable {native.BUILD_RECORD}"),
        ("bad record", f"no readable {native.BUILD_RECORD}"),
        ("one not compiled", "compiled modules missing: router.wire"),
        ("no library", f"library {ABSENT} is not importable"),
    ],
)
def test_an_incomplete_build_is_not_used(tmp_path: Path, damage: str, expected: str) -> None:
    compiled = native.COMPILED_MODULES
    if damage == "one not compiled":
        compiled = tuple(m for m in compiled if m != "router.wire")
    folder = package(tmp_path, compiled=compiled)
    record(folder)
    if damage == "no record":
        (folder / native.BUILD_RECORD).unlink()
    if damage == "bad record":
        (folder / native.BUILD_RECORD).write_text("{not json")
    build = inspect(folder, group=ABSENT if damage == "no library" else PRESENT)
    assert not build.compiled
    assert expected in build.reason


# -- the real package, in fresh interpreters --------------------------------------------------

PROBE = (
    "import router, router.fastpath, router.http11, router.native as n\n"
    "print(router.fastpath.__file__); print(router.http11.__file__); print(n.select_build())\n"
)
COMPILED = native.select_build().compiled


def probe(env_extra: dict[str, str], cwd: Path | None = None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != native.PURE_ENV} | env_extra
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, cwd=cwd, capture_output=True, text=True, check=True
    )
    return result.stdout.splitlines()


def test_the_sources_on_request() -> None:
    fastpath, http11, build = probe({native.PURE_ENV: "1"})
    assert fastpath.endswith("router/fastpath.py")
    assert http11.endswith("router/http11.py")
    assert "compiled=False" in build


@pytest.mark.skipif(not COMPILED, reason=f"router not compiled here: {native.select_build()}")
def test_the_compiled_modules_by_default() -> None:
    fastpath, http11, build = probe({})
    assert fastpath.endswith(SUFFIX)
    assert http11.endswith(SUFFIX)
    assert "compiled=True" in build


@pytest.mark.skipif(not COMPILED, reason=f"router not compiled here: {native.select_build()}")
def test_a_copy_with_an_edited_source_runs_its_sources(tmp_path: Path) -> None:
    shutil.copytree(
        native.PACKAGE_DIR, tmp_path / "router", ignore=shutil.ignore_patterns("__pycache__")
    )
    spec = importlib.util.find_spec(native.GROUP_MODULE)
    assert spec is not None and spec.origin is not None
    shutil.copy(spec.origin, tmp_path)
    env = {"PYTHONPATH": str(tmp_path)}
    fastpath, _, build = probe(env, cwd=tmp_path)
    assert fastpath == str(tmp_path / "router" / f"fastpath{SUFFIX}")
    # config.py is not compiled, but the compiled code relies on its types
    with (tmp_path / "router" / "config.py").open("a") as source:
        source.write("\n# edited after the build\n")
    fastpath, http11, build = probe(env, cwd=tmp_path)
    assert fastpath == str(tmp_path / "router" / "fastpath.py")
    assert http11 == str(tmp_path / "router" / "http11.py")
    assert "changed since compiled: config.py " in build


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="CI must test the compiled router")
def test_ci_runs_the_compiled_router() -> None:
    assert native.select_build() == native.Build(True, "compiled with mypyc")


def test_the_metrics_and_the_start_up_log_say_which_build_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    build = native.select_build()

    async def scenario() -> str:
        async with backend() as model:
            config = router_config([{"name": "m", "replicas": [model.url]}])
            async with (
                router(config) as server,
                httpx.AsyncClient(base_url=server.base_url) as client,
            ):
                return (await client.get("/metrics")).text

    with caplog.at_level(logging.INFO, logger="router.server"):
        metrics = run(scenario())
    value = "1.0" if build.compiled else "0.0"
    assert f'router_data_plane_compiled{{reason="{build.reason}"}} {value}' in metrics
    assert any(f"data plane: {build.reason}" in r.getMessage() for r in caplog.records)
