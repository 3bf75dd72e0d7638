"""The preflight gate: which phases each step probes, skipping (loudly), stopping on a
failed check with the findings, and that a stopped deploy installs nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deployer.errors import GateFailed
from deployer.gate import Gate, Step, run_gate
from preflight.options import ProbeOptions
from rules.model import Phase
from tests.conftest import EXAMPLES, example_config

LAB = EXAMPLES / "lab.yaml"
# Nothing answers DNS on the discard port: every name fails to resolve within the timeout.
DEAD_NAMESERVER = "127.0.0.1:9"


def test_without_a_config_the_gate_says_it_is_skipped() -> None:
    said: list[str] = []
    result = run_gate(Gate(), Step.SERVICE, said.append)
    assert result.ran is False
    assert said == [
        "preflight gate skipped for deploying the service: no environment config (-c FILE), "
        "so there is nothing to probe; the network is not checked before deploying"
    ]


def test_skip_preflight_is_loud_and_still_builds_the_plan() -> None:
    said: list[str] = []
    result = run_gate(Gate(example_config("lab.yaml"), skip=True), Step.ROUTER, said.append)
    assert result.ran is False
    assert said[0].startswith("WARNING: --skip-preflight: the preflight gate is OFF for installing")
    assert result.plan is not None
    assert result.plan.phases == (Phase.ROUTER_INSTALL,)


def test_each_step_probes_its_own_phases() -> None:
    gate = Gate(example_config("lab.yaml"))
    router = gate.plan(Step.ROUTER)
    service = gate.plan(Step.SERVICE)
    assert router is not None and service is not None
    assert router.phases == (Phase.ROUTER_INSTALL,)
    assert service.phases == (Phase.MODEL_DEPLOY, Phase.SERVING)
    assert "dns:mcr.microsoft.com" in router.checks
    assert "dns:labacr01.azurecr.io" in service.checks
    assert "tcp:features.postgres.database.azure.com:5432" in service.checks
    assert "dns:labacr01.azurecr.io" not in router.checks


def test_a_failed_check_stops_the_step_with_the_findings() -> None:
    gate = Gate(
        example_config("lab.yaml"),
        ProbeOptions(nameservers=[DEAD_NAMESERVER], timeout=0.3),
    )
    with pytest.raises(GateFailed) as caught:
        run_gate(gate, Step.SERVICE, lambda _: None)
    failed = caught.value
    assert "nothing was installed" in str(failed)
    assert "dns:labacr01.azurecr.io" in str(failed) or "dns:" in str(failed)
    assert failed.evaluation.first_failing_phase is not None
    assert "dns:labacr01.azurecr.io" in failed.report


def test_cli_deploy_stopped_by_the_gate_writes_no_state(tmp_path: Path) -> None:
    script = tmp_path / "score.py"
    script.write_text("def init():\n    pass\n\ndef run(data):\n    return data\n")
    model = tmp_path / "model.bin"
    model.write_bytes(b"0")
    state = tmp_path / "state"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "aksflight",
            "deploy",
            "gated",
            "--model",
            str(model),
            "--entry-script",
            str(script),
            "-c",
            str(LAB),
            "--nameserver",
            DEAD_NAMESERVER,
            "--timeout",
            "0.3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"AKSFLIGHT_STATE_DIR": str(state), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 1, result.stderr
    assert "dns:labacr01.azurecr.io" in result.stdout
    assert "nothing was installed" in result.stderr
    assert not (state / "local" / "services").exists()
    assert not (state / "local" / "router.json").exists()
