"""A deployed service's request, rebuilt from the cluster: what `update` starts from.

The Deployment's `aksflight.io/request` annotation holds the configuration, the entry
script, the environment and the model list; the ConfigMaps hold the files. They are
written into a temporary directory, which packages to the same digest as the original.
"""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from deployer.config import parse_deployment_config
from deployer.inference import Environment, InferenceConfig, Model
from deployer.kube.manifests import REQUEST_ANNOTATION
from deployer.request import DeployRequest

if TYPE_CHECKING:
    from deployer.kube.api import KubeApi, Obj


def _write_config_map(api: KubeApi, deployment: Obj, config_map_name: str, root: Path) -> None:
    namespace = deployment["metadata"]["namespace"]
    config_map = api.get("v1", "ConfigMap", config_map_name, namespace) or {}
    volume = next(
        v
        for v in deployment["spec"]["template"]["spec"]["volumes"]
        if (v.get("configMap") or {}).get("name") == config_map_name
    )
    text = config_map.get("data") or {}
    binary = config_map.get("binaryData") or {}
    for item in volume["configMap"].get("items") or []:
        target = root / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        if item["key"] in text:
            target.write_text(text[item["key"]])
        else:
            target.write_bytes(base64.b64decode(binary[item["key"]]))


def request_from_cluster(api: KubeApi, deployment: Obj) -> DeployRequest:
    name = deployment["metadata"]["name"]
    record = json.loads(deployment["metadata"]["annotations"][REQUEST_ANNOTATION])
    work = Path(tempfile.mkdtemp(prefix=f"aksflight-{name}-"))
    _write_config_map(api, deployment, f"{name}-app", work / "app")
    _write_config_map(api, deployment, f"{name}-models", work)
    models = tuple(
        Model(uri=m["uri"], name=m["name"], version=m["version"])
        if m.get("uri")
        else Model(
            path=work / "azureml-models" / m["name"] / str(m["version"]) / m["file"],
            name=m["name"],
            version=m["version"],
        )
        for m in record["models"]
    )
    environment = Environment(
        image=record.get("image"), pip_requirements=tuple(record.get("requirements") or ())
    )
    inference = InferenceConfig(record["entry_script"], work / "app", environment)
    return DeployRequest(name, models, inference, parse_deployment_config(record["config"]))
