"""The CLI contract with --target kubernetes: --dry-run -o yaml without a cluster, and a
deploy, the service commands and delete against the fake API server via a kubeconfig."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from fakekube import FakeKube

from aksflight.cli import main
from tests.deployer.kube_support import IMAGE, deploy_argv


def _deploy_args(tmp_path: Path, *extra: str) -> list[str]:
    return deploy_argv(tmp_path, "--image", IMAGE, *extra)


def test_dry_run_prints_every_manifest_without_a_cluster(tmp_path: Path) -> None:
    config = tmp_path / "deploy.yaml"
    config.write_text("num_replicas: 2\nauth_enabled: false\nnamespace: models\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "aksflight",
            *_deploy_args(tmp_path, "--deploy-config", str(config), "--dry-run", "-o", "yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "none")},
    )
    assert result.returncode == 0, result.stderr
    documents = list(yaml.safe_load_all(result.stdout))
    assert len(documents) == 19  # router (incl. its self-scaling RBAC) and service
    for document in documents:
        kubernetes_validate.validate(document, "1.33.0", strict=True)
    deployment = next(
        d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "iris"
    )
    assert deployment["metadata"]["namespace"] == "models"
    assert deployment["spec"]["replicas"] == 2
    keys = next(
        d for d in documents if d["kind"] == "Secret" and d["metadata"]["name"] == "iris-keys"
    )
    assert keys.get("data") == {}


def test_deploy_and_service_commands_through_a_kubeconfig(
    fakekube: FakeKube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = str(fakekube.write_kubeconfig(tmp_path / "kubeconfig"))
    cluster = ["--target", "kubernetes", "--kubeconfig", kubeconfig, "--context", "fakekube"]
    args = _deploy_args(tmp_path, "--kubeconfig", kubeconfig, "--context", "fakekube")
    assert main([*args, "-o", "json", "--router-image", IMAGE]) == 0
    deployed = json.loads(capsys.readouterr().out)
    assert (deployed["name"], deployed["state"], deployed["auth"]) == ("iris", "Healthy", "key")
    assert deployed["scoring_uri"].endswith("/api/v1/service/iris/score")
    assert main(["service", "keys", "iris", *cluster, "-o", "json"]) == 0
    keys = json.loads(capsys.readouterr().out)
    assert set(keys) == {"primary_key", "secondary_key"}
    assert main(["service", "state", "iris", *cluster, "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "Healthy"
    assert main(["service", "list", *cluster, "-o", "json"]) == 0
    assert [s["name"] for s in json.loads(capsys.readouterr().out)] == ["iris"]
    fakekube.requests.clear()
    assert main([*args, "-o", "json", "--router-image", IMAGE]) == 0
    capsys.readouterr()
    assert fakekube.requests.writes() == []
    assert (
        main(
            [
                "service",
                "update",
                "iris",
                *cluster,
                "--image",
                "labacr01.azurecr.io/models/iris:2",
                "-o",
                "json",
            ]
        )
        == 0
    )
    capsys.readouterr()
    image = fakekube.store.get("Deployment", "iris", "default")["spec"]["template"]["spec"][
        "containers"
    ][0]["image"]
    assert image == "labacr01.azurecr.io/models/iris:2"
    assert main(["service", "delete", "iris", *cluster]) == 0
    assert capsys.readouterr().out.strip() == "deleted iris"
    assert fakekube.store.find("Deployment", "iris", "default") is None
    assert main(["service", "state", "iris", *cluster]) == 2


def test_failed_rollout_prints_the_diagnosis_and_exits_1(
    fakekube: FakeKube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = str(fakekube.write_kubeconfig(tmp_path / "kubeconfig"))
    fakekube.controllers.set_pod_behaviour(
        "image-pull-backoff", labels={"app.kubernetes.io/component": "model"}
    )
    code = main(
        _deploy_args(
            tmp_path, "--kubeconfig", kubeconfig, "--context", "fakekube", "--wait-timeout", "5"
        )
    )
    assert code == 1
    captured = capsys.readouterr()
    assert "Failed: ImagePullBackOff" in captured.out
    assert "explained by preflight phase model-deploy" in captured.out
    assert "dns:labacr01.azurecr.io" in captured.out
    assert captured.err.splitlines()[-1].startswith("aksflight: iris: ImagePullBackOff")


def test_a_killed_deploy_process_then_the_same_deploy_converges(
    fakekube: FakeKube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import signal
    import time

    kubeconfig = str(fakekube.write_kubeconfig(tmp_path / "kubeconfig"))
    args = _deploy_args(tmp_path, "--kubeconfig", kubeconfig, "--context", "fakekube", "-o", "json")
    # The Deployment's apply stalls: the process is killed while it waits for the answer.
    fakekube.faults.add("PATCH", "/apis/apps/v1/namespaces/default/deployments/iris", 500, delay=30)
    process = subprocess.Popen(
        [sys.executable, "-m", "aksflight", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    deadline = time.monotonic() + 60
    while (
        time.monotonic() < deadline
        and fakekube.store.find("ConfigMap", "iris-models", "default") is None
    ):
        time.sleep(0.02)
    time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert fakekube.store.find("Deployment", "iris", "default") is None
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "Healthy"
    fakekube.requests.clear()
    assert main(args) == 0
    capsys.readouterr()
    assert fakekube.requests.writes() == []


def test_skip_preflight_is_loud_and_a_devtest_cluster_disables_autoscaling(
    fakekube: FakeKube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import base64

    from tests.conftest import EXAMPLES

    kubeconfig = str(fakekube.write_kubeconfig(tmp_path / "kubeconfig"))
    args = _deploy_args(tmp_path, "--kubeconfig", kubeconfig, "--context", "fakekube")
    config = str(EXAMPLES / "devtest-kubenet.yaml")
    assert main([*args, "-c", config, "--skip-preflight", "-o", "json"]) == 0
    captured = capsys.readouterr()
    assert (
        "WARNING: --skip-preflight: the preflight gate is OFF for installing the router"
        in captured.err
    )
    assert (
        "WARNING: --skip-preflight: the preflight gate is OFF for deploying the service"
        in captured.err
    )
    secret = fakekube.store.get("Secret", "aksflight-router-config", "azureml")
    assert (
        json.loads(base64.b64decode(secret["data"]["router.json"]))["cluster_purpose"] == "DevTest"
    )
