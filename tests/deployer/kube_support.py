"""Pieces for the Kubernetes-target tests: a target on the fake API server, with backoff
sleeps recorded instead of slept, and requests for small services."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fakekube import FakeKube

from deployer.config import deploy_configuration
from deployer.inference import Environment, InferenceConfig, Model
from deployer.kube.api import KubeApi, RetryPolicy
from deployer.kube.target import KubernetesTarget
from deployer.request import DeployRequest

IMAGE = "labacr01.azurecr.io/models/iris:1"
SCORE = "def init():\n    pass\n\n\ndef run(data):\n    return data\n"


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def target_on(fake: FakeKube, sleeps: Sleeps | None = None, **options: Any) -> KubernetesTarget:
    api = KubeApi(
        fake.api_client(), RetryPolicy(), sleep=sleeps if sleeps is not None else Sleeps()
    )
    options.setdefault("router_image", "labacr01.azurecr.io/aksflight:0.1.0")
    return KubernetesTarget(api=api, poll_seconds=0.0, sleep=lambda _: None, **options)


def source_dir(root: Path, text: str = SCORE) -> Path:
    source = root / "src"
    source.mkdir(parents=True, exist_ok=True)
    (source / "score.py").write_text(text)
    (source / "helpers.py").write_text("VALUE = 1\n")
    return source


def model_file(root: Path, content: bytes = b"\x80\x04weights") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "model.joblib"
    path.write_bytes(content)
    return path


def deploy_argv(root: Path, *extra: str) -> list[str]:
    """`aksflight deploy iris ... --target kubernetes` with the model and source under `root`."""
    return [
        "deploy",
        "iris",
        "--model",
        str(model_file(root)),
        "--entry-script",
        "score.py",
        "--source-directory",
        str(source_dir(root)),
        "--target",
        "kubernetes",
        *extra,
    ]


def request(root: Path, name: str = "iris", *, image: str = IMAGE, **config: Any) -> DeployRequest:
    return DeployRequest(
        name,
        (Model(path=model_file(root), name="iris"),),
        InferenceConfig("score.py", source_dir(root), Environment(image=image)),
        deploy_configuration(**config),
    )


def objects(
    fake: FakeKube, namespaces: tuple[str, ...] = ("default", "azureml")
) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of every object the deployer could have written."""
    kinds = (
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Secret",
        "ConfigMap",
        "Deployment",
        "Service",
    )
    found = set()
    for kind in kinds:
        for namespace in namespaces:
            for obj in fake.store.list(kind, namespace):
                if kind == "ServiceAccount" and obj["metadata"]["name"] == "default":
                    continue
                if kind == "Service" and obj["metadata"]["name"] == "kubernetes":
                    continue
                if kind == "ConfigMap" and obj["metadata"]["name"] == "kube-root-ca.crt":
                    continue
                found.add((kind, namespace, obj["metadata"]["name"]))
    return found


def router_services(fake: FakeKube) -> dict[str, Any]:
    import base64

    secret = fake.store.get("Secret", "aksflight-router-config", "azureml")
    config = json.loads(base64.b64decode(secret["data"]["router.json"]))
    return {service["name"]: service for service in config["services"]}
