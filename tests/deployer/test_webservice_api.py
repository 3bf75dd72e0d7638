"""The Python API with v1's names, on the Kubernetes target against the fake API server,
and the gate in front of a router install."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakekube import FakeKube

from deployer import (
    Gate,
    GateFailed,
    InferenceConfig,
    Model,
    Webservice,
    deploy,
    deploy_configuration,
)
from deployer.inference import Environment
from preflight.options import ProbeOptions
from tests.conftest import example_config
from tests.deployer.kube_support import IMAGE, model_file, source_dir, target_on


def test_v1_style_deploy_wait_keys_token_logs_update_delete(
    fakekube: FakeKube, tmp_path: Path
) -> None:
    target = target_on(fakekube)
    service = deploy(
        "iris",
        [Model(path=model_file(tmp_path), name="iris")],
        InferenceConfig("score.py", source_dir(tmp_path), Environment(image=IMAGE)),
        deploy_configuration(num_replicas=1),
        target,
    )
    assert isinstance(service, Webservice)
    assert service.wait_for_deployment(show_output=False).value == "Healthy"
    assert service.state == "Healthy"
    assert service.scoring_uri.endswith("/api/v1/service/iris/score")
    assert service.swagger_uri.endswith("/api/v1/service/iris/swagger.json")
    primary, secondary = service.get_keys()
    assert service.regen_key("Secondary")[0] == primary
    assert service.get_keys()[1] != secondary
    assert isinstance(service.get_logs(num_lines=10), str)
    info = service.update(num_replicas=2)
    assert info.state.value == "Healthy"
    assert fakekube.store.get("Deployment", "iris", "default")["spec"]["replicas"] == 2
    tokens = deploy(
        "tokens",
        [Model(path=model_file(tmp_path / "t"), name="iris")],
        InferenceConfig("score.py", source_dir(tmp_path / "t"), Environment(image=IMAGE)),
        deploy_configuration(token_auth_enabled=True),
        target,
        wait=True,
    )
    token, refresh_by = tokens.get_token()
    assert (token, refresh_by)[0].count(".") == 2
    service.delete()
    assert [s.name for s in Webservice.list(target)] == ["tokens"]


def test_the_gate_stops_a_router_install_before_any_write(
    fakekube: FakeKube, tmp_path: Path
) -> None:
    gate = Gate(example_config("lab.yaml"), ProbeOptions(nameservers=["127.0.0.1:9"], timeout=0.3))
    fakekube.requests.clear()
    with pytest.raises(GateFailed) as caught:
        deploy(
            "iris",
            [Model(path=model_file(tmp_path), name="iris")],
            InferenceConfig("score.py", source_dir(tmp_path), Environment(image=IMAGE)),
            target=target_on(fakekube),
            gate=gate,
        )
    assert caught.value.plan.phases[0].value == "router-install"
    assert "dns:mcr.microsoft.com" in caught.value.report
    assert fakekube.requests.writes() == []
