"""The local environment cache: hash -> look up -> build only when missing.

Seeding is checked against the real model-server virtualenv; the layered build installs a
wheel made in the test (no package index needed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from deployer.errors import EnvironmentBuildError
from deployer.inference import Environment
from deployer.local.envcache import EnvironmentCache
from tests.deployer.local_support import example_environment

pytestmark = pytest.mark.modelserver


def test_seeded_then_cached_and_a_killed_build_is_redone(tmp_path: Path, venv: Path) -> None:
    cache = EnvironmentCache(tmp_path / "envs", seeds=[venv])
    environment = example_environment()
    assert cache.lookup(environment) is None
    first = cache.resolve(environment)
    assert first.how == "seeded"
    assert first.python == venv / "bin" / "python"
    again = cache.resolve(environment)
    assert (again.how, again.python) == ("cached", first.python)
    assert again.seconds < 0.05
    (cache.entry(environment.local_hash()) / "env.json").unlink()  # as if killed mid-build
    assert cache.resolve(environment).how == "seeded"
    assert first.server_command("score.py")[1:] == [
        "-m",
        "azureml_inference_server_http",
        "--entry_script",
        "score.py",
        "--port",
        "{port}",
    ]


def test_different_requirements_are_different_environments(tmp_path: Path, venv: Path) -> None:
    cache = EnvironmentCache(tmp_path / "envs", seeds=[venv])
    a = cache.resolve(Environment(pip_requirements=("joblib",)))
    b = cache.resolve(Environment(pip_requirements=("scikit-learn>=1.4",)))
    assert a.hash != b.hash
    assert sorted(p.name for p in (tmp_path / "envs").iterdir() if p.is_dir()) == sorted(
        [a.hash, b.hash]
    )


def _wheel(tmp_path: Path) -> Path:
    """A pure-Python wheel written by hand (a zip with METADATA, WHEEL and RECORD)."""
    import zipfile

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    info = "aksflight_tinypkg-1.0.dist-info"
    files = {
        "tinypkg/__init__.py": "ANSWER = 42\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: aksflight-tinypkg\nVersion: 1.0\n",
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(wheels / "aksflight_tinypkg-1.0-py3-none-any.whl", "w") as archive:
        for name, text in {**files, f"{info}/RECORD": record}.items():
            archive.writestr(name, text)
    return wheels


@pytest.mark.slow
def test_layered_build_installs_only_what_the_seed_lacks(
    tmp_path: Path, venv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels = _wheel(tmp_path)
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    cache = EnvironmentCache(tmp_path / "envs", seeds=[venv])
    built = cache.resolve(Environment(pip_requirements=("joblib", "aksflight-tinypkg==1.0")))
    assert built.how == "layered"
    script = "import tinypkg, joblib, azureml_inference_server_http; print(tinypkg.ANSWER)"
    check = subprocess.run(
        [str(built.python), "-c", script],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": ""},
    )  # fmt: skip
    assert check.stdout.strip() == "42", check.stderr
    site = next((built.python.parent.parent / "lib").glob("python*/site-packages"))
    installed = sorted(p.name for p in site.glob("*.dist-info"))
    assert [n for n in installed if not n.startswith(("pip-", "setuptools-"))] == [
        "aksflight_tinypkg-1.0.dist-info"
    ]


def test_a_failed_build_step_says_where_its_output_went(tmp_path: Path) -> None:
    from deployer.local.envcache import _run

    log = tmp_path / "build.log"
    with pytest.raises(EnvironmentBuildError) as caught:
        _run(["sh", "-c", "echo resolving; exit 3"], log, "pip install", 30)
    assert str(caught.value) == f"pip install failed (exit code 3); see {log}"
    assert log.read_text() == "$ sh -c echo resolving; exit 3\nresolving\n"
