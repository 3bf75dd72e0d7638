"""The deployment configuration, with Azure ML v1's parameter names, defaults and rules.

    config = deploy_configuration(cpu_cores=0.5, memory_gb=1, num_replicas=2)
    config = load_deployment_config(Path("deploy.yaml"))   # the same names, as YAML

As `AksWebservice.deploy_configuration` did: requests default to 0.1 CPU and 0.5 GB; the
router autoscales unless `num_replicas` is given; key auth is on unless token auth is; the
liveness probe waits 310 s before its first check. Every violated rule is one line that
names the parameter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from deployer._files import read_yaml_mapping
from deployer.errors import DeployConfigError

NAMESPACE_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
MIN_KEY_LENGTH = 16  # the router refuses shorter keys
AUTOSCALE_DEFAULTS: dict[str, int] = {
    "autoscale_min_replicas": 1,
    "autoscale_max_replicas": 10,
    "autoscale_refresh_seconds": 1,
    "autoscale_target_utilization": 70,
}

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
PositiveInt = Annotated[int, Field(gt=0)]
AuthMode = Literal["key", "token", "none"]


class DeploymentConfiguration(BaseModel):
    """v1's `AksWebservice.deploy_configuration(...)` as data; use `deploy_configuration`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    autoscale_enabled: bool | None = None
    autoscale_min_replicas: PositiveInt | None = None
    autoscale_max_replicas: PositiveInt | None = None
    autoscale_refresh_seconds: PositiveInt | None = None
    autoscale_target_utilization: Annotated[int, Field(gt=0, le=100)] | None = None
    num_replicas: PositiveInt | None = None
    collect_model_data: bool = False
    auth_enabled: bool | None = None
    token_auth_enabled: bool = False
    primary_key: str | None = None
    secondary_key: str | None = None
    cpu_cores: PositiveFloat = 0.1
    memory_gb: PositiveFloat = 0.5
    cpu_cores_limit: PositiveFloat | None = None
    memory_gb_limit: PositiveFloat | None = None
    gpu_cores: Annotated[int, Field(ge=0)] = 0
    enable_app_insights: bool = False
    scoring_timeout_ms: PositiveInt = 60_000
    replica_max_concurrent_requests: PositiveInt = 1
    max_request_wait_time: PositiveInt = 500
    period_seconds: PositiveInt = 10
    initial_delay_seconds: PositiveInt = 310
    timeout_seconds: PositiveInt = 2
    success_threshold: PositiveInt = 1
    failure_threshold: PositiveInt = 3
    namespace: Annotated[str, Field(pattern=NAMESPACE_PATTERN, max_length=63)] | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    description: str | None = None

    @model_validator(mode="after")
    def _v1_rules(self) -> DeploymentConfiguration:
        _check_rules(self)
        return self

    # --- what the rules resolve to -------------------------------------------------------

    @property
    def autoscale(self) -> bool:
        """v1: autoscaling is on when `num_replicas` is not given (unless switched off)."""
        if self.autoscale_enabled is not None:
            return self.autoscale_enabled
        return self.num_replicas is None

    @property
    def min_replicas(self) -> int:
        return self.autoscale_min_replicas or AUTOSCALE_DEFAULTS["autoscale_min_replicas"]

    @property
    def max_replicas(self) -> int:
        return self.autoscale_max_replicas or AUTOSCALE_DEFAULTS["autoscale_max_replicas"]

    @property
    def refresh_seconds(self) -> int:
        return self.autoscale_refresh_seconds or AUTOSCALE_DEFAULTS["autoscale_refresh_seconds"]

    @property
    def target_utilization(self) -> int:
        return (
            self.autoscale_target_utilization or AUTOSCALE_DEFAULTS["autoscale_target_utilization"]
        )

    @property
    def initial_replicas(self) -> int:
        """How many replicas to start with: `num_replicas`, else the autoscale minimum."""
        if self.autoscale:
            return self.min_replicas
        return self.num_replicas or 1

    @property
    def auth_mode(self) -> AuthMode:
        if self.token_auth_enabled:
            return "token"
        return "none" if self.auth_enabled is False else "key"

    def effective_namespace(self, default: str = "default") -> str:
        return self.namespace or default

    def given(self) -> dict[str, Any]:
        """Only the parameters that were set: what a record or a YAML file keeps."""
        return {k: v for k, v in self.to_dict().items() if k in self.model_fields_set}

    def to_dict(self) -> dict[str, Any]:
        """The parameters as given (None for unset), for YAML round trips and records."""
        return self.model_dump(mode="json")


def _check_rules(config: DeploymentConfiguration) -> None:
    """v1's cross-parameter rules; the first violation raises a one-line error."""
    autoscale_given = [name for name in AUTOSCALE_DEFAULTS if getattr(config, name) is not None]
    if config.autoscale_enabled is False and autoscale_given:
        raise DeployConfigError(autoscale_given[0], "only allowed when autoscale_enabled is true")
    if config.autoscale and config.num_replicas is not None:
        raise DeployConfigError(
            "num_replicas", "only allowed when autoscale_enabled is false (autoscaling is on)"
        )
    if config.min_replicas > config.max_replicas:
        raise DeployConfigError(
            "autoscale_min_replicas",
            f"{config.min_replicas} exceeds autoscale_max_replicas ({config.max_replicas})",
        )
    if config.auth_enabled and config.token_auth_enabled:
        raise DeployConfigError(
            "token_auth_enabled", "auth_enabled and token_auth_enabled cannot both be true"
        )
    for name in ("primary_key", "secondary_key"):
        key = getattr(config, name)
        if key is None:
            continue
        if config.auth_mode != "key":
            raise DeployConfigError(name, "only allowed with key auth (auth_enabled)")
        if len(key) < MIN_KEY_LENGTH or not key.isascii() or not key.isprintable() or " " in key:
            raise DeployConfigError(
                name, f"at least {MIN_KEY_LENGTH} printable ASCII characters without spaces"
            )
    if config.primary_key is not None and config.primary_key == config.secondary_key:
        raise DeployConfigError("secondary_key", "must differ from primary_key")
    for limit, request in (("cpu_cores_limit", "cpu_cores"), ("memory_gb_limit", "memory_gb")):
        value = getattr(config, limit)
        if value is not None and value < getattr(config, request):
            raise DeployConfigError(
                limit, f"{value} is less than {request} ({getattr(config, request)})"
            )


def _field(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if not str(p).startswith("function-")]
    return ".".join(parts)


def _problem(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown parameter"
    if kind == "missing":
        return "required"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if kind == "string_pattern_mismatch":
        return "must be a DNS label: lowercase letters, digits and inner hyphens, 1 to 63"
    return message[0].lower() + message[1:] if message else kind


def _located(field: str, problem: str, source: str) -> DeployConfigError:
    return DeployConfigError(f"{source}: {field}" if source else field, problem)


def parse_deployment_config(data: Any, source: str = "") -> DeploymentConfiguration:
    """Validate a mapping of v1 parameter names; raise one DeployConfigError."""
    if not isinstance(data, dict):
        raise DeployConfigError(source, "the deployment configuration must be a mapping")
    try:
        return DeploymentConfiguration.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _located(_field(tuple(first["loc"])), _problem(first), source) from None
    except DeployConfigError as exc:  # a cross-parameter rule (raised as is by pydantic)
        raise _located(exc.field, exc.problem, source) from None


def deploy_configuration(**parameters: Any) -> DeploymentConfiguration:
    """The Python API, named as v1's `AksWebservice.deploy_configuration`."""
    return parse_deployment_config(parameters)


def load_deployment_config(path: Path) -> DeploymentConfiguration:
    """`--deploy-config FILE`: a YAML mapping with the v1 parameter names."""
    return parse_deployment_config(read_yaml_mapping(path, "deployment configuration"), str(path))


def merge_deployment_config(
    base: DeploymentConfiguration, **overrides: Any
) -> DeploymentConfiguration:
    """`base` with some parameters replaced, validated again (used by `update`)."""
    data = {k: v for k, v in base.model_dump().items() if k in base.model_fields_set}
    data.update(overrides)
    return parse_deployment_config(data)
