"""Deploy the scikit-learn example locally, score it through the router, show the result.

    from deployer.local.demo import demo_deploy
    result = demo_deploy(Path("aksflight/examples/sklearn"))
    result.scoring_uri, result.key, result.response

The example's model is trained on first use, with the environment's own interpreter (so
scikit-learn's versions match), and kept under the state directory.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from deployer.config import deploy_configuration
from deployer.errors import DeployConfigError, TargetError
from deployer.inference import Environment, InferenceConfig, Model, read_requirements
from deployer.local.target import LocalTarget
from deployer.request import DeployRequest
from deployer.states import ServiceInfo


@dataclass(frozen=True)
class DemoResult:
    info: ServiceInfo
    key: str
    request: Any
    response: Any
    seconds: float

    @property
    def scoring_uri(self) -> str:
        return self.info.scoring_uri


def _train(python: Path, example: Path, output: Path) -> Path:
    model = output / "model.joblib"
    if model.exists():
        return model
    result = subprocess.run(
        [str(python), str(example / "train.py"), str(output)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise TargetError(f"training the example model failed: {result.stderr.strip()[-300:]}")
    return model


def demo_deploy(
    example: Path,
    name: str = "iris",
    *,
    target: LocalTarget | None = None,
    say: Callable[[str], None] = print,
    timeout: float = 300.0,
) -> DemoResult:
    """Train (once), deploy with the documented default configuration, score one request."""
    import time

    if not (example / "score.py").is_file():
        raise DeployConfigError("example", f"{example} holds no score.py")
    started = time.perf_counter()
    local = target or LocalTarget()
    environment = Environment(pip_requirements=read_requirements(example / "requirements.txt"))
    env = local.cache.resolve(environment)
    model = _train(env.python, example, local.layout.root / "demo" / name)
    request = DeployRequest(
        name,
        (Model(path=model, name=name),),
        InferenceConfig("score.py", example, environment),
        deploy_configuration(),
    )
    info = local.deploy(request, timeout=timeout, say=say)
    key = local.keys(name)[0]
    sample = json.loads((example / "sample-request.json").read_text())
    answer = httpx.post(
        info.scoring_uri, json=sample, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    response = answer.json() if answer.status_code == 200 else answer.text
    say(f"{info.name} is {info.state.value}")
    say(f"scoring URI: {info.scoring_uri}")
    say(f"key: {key}")
    say(f"sample request {json.dumps(sample)} -> {answer.status_code} {json.dumps(response)}")
    return DemoResult(info, key, sample, response, time.perf_counter() - started)
