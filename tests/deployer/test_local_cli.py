"""The CLI contract on the local target, and an interrupted deploy that converges."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aksflight.cli import main
from deployer.local.layout import Layout, live_replica_pids, pid_alive
from tests.deployer.local_support import EXAMPLE, SAMPLE

pytestmark = [pytest.mark.modelserver, pytest.mark.slow]


class Cli:
    def __init__(self, tmp_path: Path, venv: Path) -> None:
        self.state = tmp_path / "state"
        self.env = {
            **os.environ,
            "AKSFLIGHT_STATE_DIR": str(self.state),
            "AKSFLIGHT_MODELSERVER_VENV": str(venv),
            "HOME": str(tmp_path / "home"),
        }

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "aksflight", *args]

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            timeout=300,
            env=self.env,
            check=False,
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def json(self, *args: str) -> object:
        return json.loads(self(*args, "-o", "json").stdout)


@pytest.fixture
def cli(tmp_path: Path, venv: Path) -> Iterator[Cli]:
    runner = Cli(tmp_path, venv)
    try:
        yield runner
    finally:
        runner("local", "stop", check=False)


def _deploy_args(model: Path) -> list[str]:
    return [
        "deploy",
        "iris",
        "--model",
        str(model),
        "--entry-script",
        "score.py",
        "--source-directory",
        str(EXAMPLE),
        "--requirements",
        str(EXAMPLE / "requirements.txt"),
    ]


def test_cli_contract(
    cli: Cli,
    example_model: Path,
    venv: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The first deploy in a new process (the real command); the rest in this process
    (same state directory), which spares a second of start-up per command."""
    table = cli(*_deploy_args(example_model))
    assert "Service iris: Healthy" in table.stdout
    assert "Scoring URI: http://127.0.0.1:" in table.stdout
    assert "Primary key: " in table.stdout
    assert "preflight gate skipped" in table.stderr
    monkeypatch.setenv("AKSFLIGHT_STATE_DIR", str(cli.state))
    monkeypatch.setenv("AKSFLIGHT_MODELSERVER_VENV", str(venv))

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    def as_json(*args: str) -> Any:
        code, out, err = run(*args, "-o", "json")
        assert code == 0, err
        return json.loads(out)

    deployed = as_json(*_deploy_args(example_model))
    assert {"name", "state", "scoring_uri", "swagger_uri", "auth"} <= set(deployed)
    assert (deployed["name"], deployed["state"], deployed["auth"]) == ("iris", "Healthy", "key")
    keys = as_json("service", "keys", "iris")
    assert set(keys) == {"primary_key", "secondary_key"}
    answer = httpx.post(
        deployed["scoring_uri"],
        json=SAMPLE,
        headers={"Authorization": f"Bearer {keys['secondary_key']}"},
        timeout=30,
    )
    assert answer.json() == {"predictions": [0, 2]}
    assert as_json("service", "state", "iris")["state"] == "Healthy"
    assert [s["name"] for s in as_json("service", "list")] == ["iris"]
    rotated = as_json("service", "regen-key", "iris", "primary")
    assert rotated["secondary_key"] == keys["secondary_key"]
    assert rotated["primary_key"] != keys["primary_key"]
    assert "POST /score 200" in run("service", "logs", "iris", "--tail", "50")[1]
    assert "environment" in run("service", "logs", "iris", "--init")[1]
    code, _, err = run("service", "token", "iris")
    assert code == 1 and "does not use token auth" in err
    code, _, err = run("service", "state", "nope")
    assert code == 2
    assert err.strip() == "aksflight: no service named 'nope' on the local target"
    code, _, err = run(
        "deploy", "Bad_Name", "--model", str(example_model), "--entry-script", "x.py"
    )
    assert code == 2 and "\n" not in err.strip()
    assert run("local", "stop")[1].strip() == "stopped the local router and its replicas"
    assert as_json("service", "state", "iris") == {
        "state": "Unhealthy",
        "name": "iris",
        "detail": "the local router is stopped (`aksflight deploy` starts it)",
    }


@pytest.mark.parametrize("kill_after", ["router.json", "services/iris/service.json"])
def test_killed_deploy_then_the_same_deploy_converges(
    cli: Cli, example_model: Path, kill_after: str
) -> None:
    layout = Layout(cli.state / "local")
    marker = layout.root / kill_after
    process = subprocess.Popen(
        cli.command(*_deploy_args(example_model)),
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not marker.exists():
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    deployed = cli.json(*_deploy_args(example_model))
    assert isinstance(deployed, dict) and deployed["state"] == "Healthy"
    releases = sorted(p.name for p in (layout.service("iris") / "releases").iterdir())
    assert releases == [deployed["release"]]
    assert len(live_replica_pids(layout, "iris")) == 1
    again = cli.json(*_deploy_args(example_model))
    assert isinstance(again, dict) and again["release"] == deployed["release"]
    pids = live_replica_pids(layout, "iris")
    cli("service", "delete", "iris")
    assert not layout.service("iris").exists()
    assert not layout.router_config.exists()
    assert not any(pid_alive(pid) for pid in pids)
    assert cli.json("service", "list") == []
