"""The local target end to end: the real router and the real model server with the
scikit-learn example, as background processes under a temporary state directory."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deployer import Webservice
from deployer.errors import DeploymentFailed, ServiceNotFound
from deployer.local.layout import pid_alive
from deployer.local.target import LocalTarget
from deployer.states import ServiceState
from tests.deployer.local_support import SAMPLE, example_request, make_target, replica_pids

pytestmark = [pytest.mark.modelserver, pytest.mark.slow]


@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory, env_cache: Path, venv: Path, example_model: Path
) -> Iterator[LocalTarget]:
    """One target with `iris` deployed, for the tests that only add services next to it."""
    target = make_target(tmp_path_factory.mktemp("shared"), env_cache, venv)
    try:
        target.deploy(example_request(example_model), timeout=120)
        yield target
    finally:
        target.stop()


def _score(uri: str, credential: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    return httpx.post(uri, json=SAMPLE, headers=headers, timeout=30)


def _files(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*") if p.is_file()}


def test_deploy_scores_through_the_router_and_redeploy_changes_nothing(
    shared: LocalTarget, example_model: Path
) -> None:
    local_target = shared
    info = local_target.info("iris")
    assert info.state is ServiceState.HEALTHY
    assert info.scoring_uri.endswith("/api/v1/service/iris/score")
    assert info.swagger_uri.endswith("/api/v1/service/iris/swagger.json")
    assert info.auth == "key"
    primary, secondary = local_target.keys("iris")
    for key in (primary, secondary):
        answer = _score(info.scoring_uri, key)
        assert answer.status_code == 200
        assert answer.json() == {"predictions": [0, 2]}
    assert _score(info.scoring_uri, None).status_code == 401
    assert _score(info.scoring_uri, "not-the-key-0123456789").status_code == 401

    before = _files(local_target.layout.services)
    config_before = local_target.layout.router_config.stat().st_mtime
    pids_before = replica_pids(local_target, "iris")
    supervisor = local_target.supervisor_pid()
    again = local_target.deploy(example_request(example_model), timeout=60)
    assert again.state is ServiceState.HEALTHY
    assert _files(local_target.layout.services) == before
    assert local_target.layout.router_config.stat().st_mtime == config_before
    assert replica_pids(local_target, "iris") == pids_before
    assert local_target.supervisor_pid() == supervisor
    assert local_target.keys("iris") == (primary, secondary)


def test_regen_key_keeps_the_other_key_working(shared: LocalTarget) -> None:
    local_target = shared
    info = local_target.info("iris")
    old_primary, secondary = local_target.keys("iris")
    new_primary, kept = local_target.regen_key("iris", "Primary")
    assert kept == secondary
    assert new_primary != old_primary
    assert _score(info.scoring_uri, new_primary).status_code == 200
    assert _score(info.scoring_uri, secondary).status_code == 200
    assert _score(info.scoring_uri, old_primary).status_code == 401
    chosen = "chosen-secondary-key-0123456789"
    assert local_target.regen_key("iris", "secondary", chosen) == (new_primary, chosen)
    assert _score(info.scoring_uri, chosen).status_code == 200


def test_token_auth_next_to_a_key_auth_service(shared: LocalTarget, example_model: Path) -> None:
    local_target = shared
    supervisor = local_target.supervisor_pid()
    info = local_target.deploy(
        example_request(example_model, name="iris-token", token_auth_enabled=True), timeout=120
    )
    assert local_target.supervisor_pid() == supervisor  # a new service is a reload
    assert info.auth == "token"
    token, refresh_by = local_target.token("iris-token")
    assert refresh_by.tzinfo is not None
    assert _score(info.scoring_uri, token).status_code == 200
    assert _score(info.scoring_uri, None).status_code == 401


def test_supervisor_restarts_a_killed_router(shared: LocalTarget) -> None:
    local_target = shared
    info = local_target.info("iris")

    status = json.loads(local_target.layout.supervisor_status.read_text())
    os.killpg(status["router_pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _healthy(info.scoring_uri, local_target):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the router did not come back")
    assert len(replica_pids(local_target, "iris")) == 1  # the orphaned replica was stopped


def test_stop_ends_every_process_and_deploy_brings_them_back(
    shared: LocalTarget, example_model: Path
) -> None:
    local_target = shared
    supervisor = local_target.supervisor_pid()
    assert supervisor is not None
    pids = replica_pids(local_target, "iris")
    assert local_target.stop() is True
    assert not pid_alive(supervisor)
    assert not any(pid_alive(pid) for pid in pids)
    assert local_target.info("iris").state is ServiceState.UNHEALTHY
    info = local_target.deploy(example_request(example_model), timeout=120)
    assert info.state is ServiceState.HEALTHY
    assert _score(info.scoring_uri, local_target.keys("iris")[0]).status_code == 200


def test_update_replaces_replicas_and_delete_removes_only_that_service(
    shared: LocalTarget,
) -> None:
    """On the shared target (`iris` and `iris-token`), last in its group: it restarts."""
    local_target = shared
    first = local_target.info("iris")
    other = local_target.info("iris-token")
    other_dir = local_target.layout.service("iris-token")
    other_pids = replica_pids(local_target, "iris-token")
    local_target.delete("iris-token")
    assert not other_dir.exists()
    assert not any(pid_alive(pid) for pid in other_pids)
    assert [s.name for s in local_target.list()] == ["iris"]
    assert _score(first.scoring_uri, local_target.keys("iris")[0]).status_code == 200
    assert _score(other.scoring_uri, "x" * 20).status_code == 404
    with pytest.raises(ServiceNotFound):
        local_target.info("iris-token")

    old_pids = replica_pids(local_target, "iris")
    updated = Webservice(local_target, "iris").update(num_replicas=2, timeout_sec=120)
    assert updated.state is ServiceState.HEALTHY
    assert len(replica_pids(local_target, "iris")) == 2
    assert not any(pid_alive(pid) for pid in old_pids)
    releases = list((local_target.layout.service("iris") / "releases").iterdir())
    assert [p.name for p in releases] == [updated.extra["release"]]
    assert _score(first.scoring_uri, local_target.keys("iris")[0]).status_code == 200


def test_failing_init_is_diagnosed_with_its_traceback(
    local_target: LocalTarget, example_model: Path, tmp_path: Path
) -> None:
    source = tmp_path / "broken"
    source.mkdir()
    (source / "score.py").write_text(
        "import socket\n\n"
        "def init():\n"
        "    socket.create_connection(('features.postgres.database.invalid', 5432), timeout=1)\n\n"
        "def run(data):\n"
        "    return data\n"
    )
    with pytest.raises(DeploymentFailed) as caught:
        local_target.deploy(
            example_request(example_model, name="unreachable", source=source), timeout=60
        )
    diagnosis = caught.value.diagnosis
    assert diagnosis is not None
    assert diagnosis.cause == "CrashLoopBackOff"
    assert diagnosis.phase is not None and diagnosis.phase.value == "serving"
    assert diagnosis.checks == (
        "dns:features.postgres.database.invalid",
        "tcp:features.postgres.database.invalid:5432",
    )
    assert "socket.gaierror" in diagnosis.logs
    assert "score.py" in diagnosis.logs
    assert local_target.info("unreachable").state is ServiceState.FAILED
    assert "Traceback" in local_target.logs("unreachable")


def test_script_bug_is_not_blamed_on_the_network(
    local_target: LocalTarget, example_model: Path, tmp_path: Path
) -> None:
    source = tmp_path / "buggy"
    source.mkdir()
    (source / "score.py").write_text(
        "def init():\n    raise ValueError('no model here')\n\ndef run(data):\n    return data\n"
    )
    with pytest.raises(DeploymentFailed) as caught:
        local_target.deploy(example_request(example_model, name="buggy", source=source), timeout=60)
    diagnosis = caught.value.diagnosis
    assert diagnosis is not None and diagnosis.phase is None
    assert "ValueError: no model here" in diagnosis.message


def _healthy(uri: str, target: LocalTarget) -> bool:
    try:
        return _score(uri, target.keys("iris")[0]).status_code == 200
    except httpx.HTTPError:
        return False


def test_demo_deploy_trains_deploys_and_scores(local_target: LocalTarget) -> None:
    from deployer.local.demo import demo_deploy
    from tests.deployer.local_support import EXAMPLE

    said: list[str] = []
    result = demo_deploy(EXAMPLE, target=local_target, say=said.append, timeout=120)
    assert result.info.state is ServiceState.HEALTHY
    assert result.response == {"predictions": [0, 2]}
    assert result.key == local_target.keys("iris")[0]
    assert f"scoring URI: {result.scoring_uri}" in said
    assert (local_target.layout.root / "demo" / "iris" / "model.joblib").exists()
