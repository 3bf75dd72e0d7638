"""The deployment configuration: v1 defaults, v1 rules, one-line errors, YAML and Python."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.config import (
    DeploymentConfiguration,
    deploy_configuration,
    load_deployment_config,
    merge_deployment_config,
)
from deployer.errors import DeployConfigError


def test_v1_defaults() -> None:
    config = deploy_configuration()
    assert (config.cpu_cores, config.memory_gb) == (0.1, 0.5)
    assert (config.cpu_cores_limit, config.memory_gb_limit, config.gpu_cores) == (None, None, 0)
    assert config.autoscale is True
    assert (config.min_replicas, config.max_replicas) == (1, 10)
    assert (config.refresh_seconds, config.target_utilization) == (1, 70)
    assert config.initial_replicas == 1
    assert config.auth_mode == "key"
    assert config.replica_max_concurrent_requests == 1
    assert config.max_request_wait_time == 500
    assert config.scoring_timeout_ms == 60_000
    probe = (
        config.period_seconds,
        config.initial_delay_seconds,
        config.timeout_seconds,
        config.success_threshold,
        config.failure_threshold,
    )
    assert probe == (10, 310, 2, 1, 3)
    assert config.collect_model_data is False
    assert config.effective_namespace() == "default"


def test_num_replicas_turns_autoscale_off() -> None:
    config = deploy_configuration(num_replicas=3)
    assert config.autoscale is False
    assert config.initial_replicas == 3


def test_token_auth_switches_key_auth_off() -> None:
    assert deploy_configuration(token_auth_enabled=True).auth_mode == "token"
    assert deploy_configuration(auth_enabled=False).auth_mode == "none"


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"cpu_cores": 0}, "cpu_cores: input should be greater than 0"),
        ({"memory_gb": -1}, "memory_gb: input should be greater than 0"),
        ({"scoring_timeout_ms": 0}, "scoring_timeout_ms: input should be greater than 0"),
        ({"period_seconds": 0}, "period_seconds: input should be greater than 0"),
        ({"gpu_cores": -1}, "gpu_cores: input should be greater than or equal to 0"),
        (
            {"autoscale_min_replicas": 4, "autoscale_max_replicas": 2},
            "autoscale_min_replicas: 4 exceeds autoscale_max_replicas (2)",
        ),
        (
            {"autoscale_min_replicas": 11},
            "autoscale_min_replicas: 11 exceeds autoscale_max_replicas (10)",
        ),
        (
            {"autoscale_enabled": False, "autoscale_max_replicas": 3},
            "autoscale_max_replicas: only allowed when autoscale_enabled is true",
        ),
        (
            {"autoscale_enabled": True, "num_replicas": 2},
            "num_replicas: only allowed when autoscale_enabled is false (autoscaling is on)",
        ),
        (
            {"auth_enabled": True, "token_auth_enabled": True},
            "token_auth_enabled: auth_enabled and token_auth_enabled cannot both be true",
        ),
        (
            {"token_auth_enabled": True, "primary_key": "k" * 20},
            "primary_key: only allowed with key auth (auth_enabled)",
        ),
        (
            {"primary_key": "short"},
            "primary_key: at least 16 printable ASCII characters without spaces",
        ),
        (
            {"primary_key": "a" * 16, "secondary_key": "a" * 16},
            "secondary_key: must differ from primary_key",
        ),
        (
            {"cpu_cores": 1, "cpu_cores_limit": 0.5},
            "cpu_cores_limit: 0.5 is less than cpu_cores (1.0)",
        ),
        (
            {"namespace": "Not_A_Label"},
            "namespace: must be a DNS label: lowercase letters, digits and inner hyphens, 1 to 63",
        ),
        ({"namespace": "a" * 64}, "namespace: string should have at most 63 characters"),
        (
            {"autoscale_target_utilization": 0},
            "autoscale_target_utilization: input should be greater than 0",
        ),
        ({"cpu_core": 1}, "cpu_core: unknown parameter"),
        ({"cpu_cores": "1"}, "cpu_cores: input should be a valid number"),
        (
            {"num_replicas": 1.5, "autoscale_enabled": False},
            "num_replicas: input should be a valid integer",
        ),
        ({"auth_enabled": "yes"}, "auth_enabled: input should be a valid boolean"),
    ],
)
def test_v1_rules_give_one_line_errors(parameters: dict[str, object], message: str) -> None:
    with pytest.raises(DeployConfigError) as caught:
        deploy_configuration(**parameters)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


def test_yaml_file_uses_the_v1_names(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text("cpu_cores: 0.5\nmemory_gb: 1\nnum_replicas: 2\ntags: {team: ml}\n")
    config = load_deployment_config(path)
    assert config == deploy_configuration(
        cpu_cores=0.5, memory_gb=1, num_replicas=2, tags={"team": "ml"}
    )
    assert config.autoscale is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cpu_cores: 0\n", "deploy.yaml: cpu_cores: input should be greater than 0"),
        ("- 1\n", "deploy.yaml: deployment configuration must be a mapping"),
        ("a: [\n", "deploy.yaml: not valid YAML at line 2"),
        ("", "deploy.yaml: deployment configuration must be exactly one YAML document"),
        ("num_replicas: 1\nautoscale_enabled: true\n", "deploy.yaml: num_replicas: only allowed"),
    ],
)
def test_yaml_file_errors_name_file_and_parameter(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text(text)
    with pytest.raises(DeployConfigError) as caught:
        load_deployment_config(path)
    assert str(caught.value).startswith(str(tmp_path / message)), str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DeployConfigError, match="deployment configuration not found"):
        load_deployment_config(tmp_path / "nope.yaml")


def test_merge_keeps_given_parameters_and_checks_again() -> None:
    base = deploy_configuration(num_replicas=2, cpu_cores=0.25)
    merged = merge_deployment_config(base, num_replicas=3)
    assert (merged.num_replicas, merged.cpu_cores) == (3, 0.25)
    with pytest.raises(DeployConfigError, match="num_replicas: only allowed"):
        merge_deployment_config(base, autoscale_enabled=True)


def test_round_trip_through_dict() -> None:
    config = deploy_configuration(token_auth_enabled=True, autoscale_max_replicas=4)
    given = {k: v for k, v in config.to_dict().items() if k in config.model_fields_set}
    assert DeploymentConfiguration.model_validate(given) == config
