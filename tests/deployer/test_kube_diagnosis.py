"""A failed rollout, diagnosed from pod status, events and logs, down to the connectivity
phase and the preflight checks that explain it (plan of examples/lab.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakekube import FakeKube

from deployer.errors import DeploymentFailed
from deployer.gate import Gate
from deployer.states import ServiceState
from rules.model import Phase
from tests.conftest import example_config
from tests.deployer.kube_support import request, target_on

PLAN = Gate(example_config("lab.yaml")).full_plan()
MODEL_PODS = {"app.kubernetes.io/instance": "iris", "app.kubernetes.io/component": "model"}
TRACEBACK = """\
Traceback (most recent call last):
  File "/var/azureml-app/app/score.py", line 5, in init
    conn = psycopg.connect(host="features.postgres.database.azure.com", port=5432)
psycopg.OperationalError: connection to server at "features.postgres.database.azure.com" \
failed: timeout expired
"""


def _failure(fake: FakeKube, tmp_path: Path, **target_options: object) -> DeploymentFailed:
    with pytest.raises(DeploymentFailed) as caught:
        target_on(fake, **target_options).deploy(request(tmp_path), plan=PLAN, timeout=5)
    return caught.value


def test_model_image_pull_failure_points_at_the_registry_checks(
    fakekube: FakeKube, tmp_path: Path
) -> None:
    fakekube.controllers.set_pod_behaviour("image-pull-backoff", labels=MODEL_PODS)
    failure = _failure(fakekube, tmp_path)
    diagnosis = failure.diagnosis
    assert failure.state == "Failed"
    assert diagnosis.cause == "ImagePullBackOff"
    assert diagnosis.phase is Phase.MODEL_DEPLOY
    assert diagnosis.checks == (
        "dns:labacr01.azurecr.io",
        "tcp:labacr01.azurecr.io:443",
        "tls:labacr01.azurecr.io:443",
        "http:labacr01.azurecr.io:443",
    )
    assert "labacr01.azurecr.io/models/iris:1" in diagnosis.message
    assert "aksflight check -c CONFIG --phase model-deploy" in "\n".join(diagnosis.lines())


def test_router_image_pull_failure_is_the_router_install_phase(
    fakekube: FakeKube, tmp_path: Path
) -> None:
    fakekube.controllers.set_pod_behaviour(
        "err-image-pull", labels={"app.kubernetes.io/component": "router"}
    )
    failure = _failure(fakekube, tmp_path, router_image="mcr.microsoft.com/azureml/aksflight:0.1.0")
    diagnosis = failure.diagnosis
    assert diagnosis.cause == "ErrImagePull"
    assert diagnosis.phase is Phase.ROUTER_INSTALL
    assert diagnosis.checks == (
        "dns:mcr.microsoft.com",
        "tcp:mcr.microsoft.com:443",
        "tls:mcr.microsoft.com:443",
        "http:mcr.microsoft.com:443",
    )
    assert str(failure).startswith("the router: ErrImagePull")


def test_crash_loop_reaching_a_dependency_is_the_serving_phase(
    fakekube: FakeKube, tmp_path: Path
) -> None:
    fakekube.controllers.set_pod_behaviour(
        "crash-loop", labels=MODEL_PODS, log=TRACEBACK, exit_code=3
    )
    diagnosis = _failure(fakekube, tmp_path).diagnosis
    assert diagnosis.cause == "CrashLoopBackOff"
    assert diagnosis.phase is Phase.SERVING
    assert diagnosis.checks == (
        "dns:features.postgres.database.azure.com",
        "tcp:features.postgres.database.azure.com:5432",
    )
    assert "psycopg.OperationalError" in diagnosis.logs


def test_crash_loop_from_a_bug_is_not_a_network_problem(fakekube: FakeKube, tmp_path: Path) -> None:
    log = (
        "Traceback (most recent call last):\n"
        '  File "score.py", line 2, in init\n'
        "KeyError: 'AZUREML_MODEL_DIR'\n"
    )
    fakekube.controllers.set_pod_behaviour("crash-loop", labels=MODEL_PODS, log=log)
    diagnosis = _failure(fakekube, tmp_path).diagnosis
    assert diagnosis.phase is None and diagnosis.checks == ()
    assert "KeyError: 'AZUREML_MODEL_DIR'" in diagnosis.message


def test_model_download_failure_points_at_the_storage_checks(
    fakekube: FakeKube, tmp_path: Path
) -> None:
    log = (
        "aksflight: cannot download https://labstorage01.blob.core.windows.net/models/iris.joblib "
        "(host labstorage01.blob.core.windows.net): <urlopen error timed out>\n"
    )
    fakekube.controllers.set_pod_behaviour("init-failure", labels=MODEL_PODS, log=log)
    diagnosis = _failure(fakekube, tmp_path).diagnosis
    assert diagnosis.cause == "InitContainerFailed"
    assert diagnosis.phase is Phase.MODEL_DEPLOY
    assert diagnosis.checks == (
        "dns:labstorage01.blob.core.windows.net",
        "tcp:labstorage01.blob.core.windows.net:443",
        "tls:labstorage01.blob.core.windows.net:443",
        "http:labstorage01.blob.core.windows.net:443",
    )


def test_insufficient_cpu_is_unschedulable_not_a_network_problem(
    fakekube: FakeKube, tmp_path: Path
) -> None:
    fakekube.controllers.set_pod_behaviour("unschedulable", labels=MODEL_PODS)
    failure = _failure(fakekube, tmp_path)
    assert failure.state == "Unschedulable"
    assert failure.diagnosis.phase is None
    assert "Insufficient cpu" in failure.diagnosis.message
    assert "cpu_cores" in failure.diagnosis.hint


def test_a_stalled_rollout_times_out_then_reports_the_deadline(
    fakekube: FakeKube, tmp_path: Path
) -> None:
    fakekube.controllers.set_pod_behaviour("pending", labels=MODEL_PODS)
    target = target_on(fakekube)
    with pytest.raises(DeploymentFailed) as caught:
        target.deploy(request(tmp_path), timeout=0.05)
    assert caught.value.state == "Transitioning"
    assert target.info("iris").state is ServiceState.TRANSITIONING
    fakekube.controllers.expire_progress_deadline("default", "iris")
    info = target.info("iris")
    assert info.state is ServiceState.FAILED
    assert info.detail.endswith("has timed out progressing.")
    fakekube.controllers.clear_pod_behaviours()
    fakekube.controllers.restart_pods("default")
    assert target.info("iris").state is ServiceState.HEALTHY
