"""The plan's output does not depend on the interpreter's hash seed, and `-o json` stays light.

Both are properties of a whole command, so they are checked in fresh interpreters: string
hashing is randomised per process, and what a command imports shows in `sys.modules`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLES

REPO = Path(__file__).resolve().parents[2]
SEEDS = ("0", "1", "2", "3")


def _config_with_ports(tmp_path: Path) -> Path:
    """An example plus one host on several ports and protocols (chains that share DNS)."""
    data = yaml.safe_load((EXAMPLES / "key-auth-auto-domain.yaml").read_text())
    data["extra_dependencies"] = [
        {"host": "shared.example.com", "port": port, "protocol": protocol}
        for port, protocol in ((443, "https"), (8443, "https"), (5432, "tcp"), (80, "http"))
    ]
    path = tmp_path / "ports.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _python(code: str, seed: str, *args: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


RENDER = """
import sys
from pathlib import Path
from aksflight.config_file import load_config
from reports import PLAN_FORMATS
from rules.catalogue import requirements_for
from rules.model import Phase
from rules.plan import build_plan
config = load_config(Path(sys.argv[1]))
phases = [Phase(p) for p in sys.argv[3].split(",")] if sys.argv[3] else None
plan = build_plan(requirements_for(config), phases, keep_going=sys.argv[4] == "1")
sys.stdout.write(PLAN_FORMATS[sys.argv[2]](plan))
"""


@pytest.mark.parametrize(
    ("example", "phases", "keep_going"),
    [
        ("lab.yaml", "router-startup,serving", "0"),
        ("china-token-auth.yaml", "", "1"),
        ("token-auth-private-endpoints.yaml", "", "0"),
        (None, "", "0"),
        (None, "model-deploy,serving", "1"),
    ],
)
def test_json_and_mermaid_are_the_same_whatever_the_hash_seed(
    tmp_path: Path, example: str | None, phases: str, keep_going: str
) -> None:
    config = _config_with_ports(tmp_path) if example is None else EXAMPLES / example
    for fmt in ("json", "mermaid"):
        outputs = {_python(RENDER, seed, str(config), fmt, phases, keep_going) for seed in SEEDS}
        assert len(outputs) == 1, fmt


PROBE_IMPORTS = """
import io, sys
from contextlib import redirect_stdout
from aksflight.cli import main
with redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
heavy = ("networkx", "rich", "azure.mgmt.network", "httpx", "kubernetes")
print(code, sorted(name for name in heavy if name in sys.modules))
"""


def test_plan_json_imports_neither_networkx_nor_rich() -> None:
    config = EXAMPLES / "key-auth-auto-domain.yaml"
    out = _python(PROBE_IMPORTS, "0", "plan", "-c", str(config), "-o", "json")
    assert out.split(" ", 1) == ["0", "[]\n"]


def test_an_allowlist_without_sdk_models_does_not_import_the_sdk(tmp_path: Path) -> None:
    config = EXAMPLES / "key-auth-auto-domain.yaml"
    target = tmp_path / "rules.csv"
    args = ("allowlist", "-c", str(config), "-f", "csv", "-o", str(target))
    out = _python(PROBE_IMPORTS, "0", *args)
    code, imported = out.split(" ", 1)
    assert code == "0"
    assert "azure.mgmt.network" not in json.loads(imported.replace("'", '"'))
