"""Shared pieces for the local-target tests: the model server's venv, a trained example
model, and targets whose state lives in a temporary directory."""

from __future__ import annotations

import subprocess
from pathlib import Path

from deployer.config import deploy_configuration
from deployer.inference import Environment, InferenceConfig, Model, read_requirements
from deployer.local.envcache import EnvironmentCache
from deployer.local.layout import Layout
from deployer.local.target import LocalTarget
from deployer.request import DeployRequest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "aksflight" / "examples" / "sklearn"
SAMPLE = {"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}


def train_example(venv: Path, output: Path) -> Path:
    model = output / "model.joblib"
    if not model.exists():
        subprocess.run(
            [str(venv / "bin" / "python"), str(EXAMPLE / "train.py"), str(output)],
            check=True,
            capture_output=True,
        )
    return model


def example_environment() -> Environment:
    return Environment(pip_requirements=read_requirements(EXAMPLE / "requirements.txt"))


def example_request(
    model: Path, name: str = "iris", source: Path = EXAMPLE, **config: object
) -> DeployRequest:
    return DeployRequest(
        name,
        (Model(path=model, name="iris"),),
        InferenceConfig("score.py", source, example_environment()),
        deploy_configuration(**config),
    )


def make_target(state: Path, cache_root: Path, venv: Path) -> LocalTarget:
    return LocalTarget(Layout(state / "local"), EnvironmentCache(cache_root, seeds=[venv]))


def replica_pids(target: LocalTarget, name: str) -> list[int]:
    from deployer.local.layout import live_replica_pids

    return live_replica_pids(target.layout, name)
