"""The router's configuration schema; the deployer writes it, the router validates and loads it.

The schema is documented field by field in docs/router.md. Every model forbids unknown keys so
that a typo in a file written by hand fails loudly instead of being ignored.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from router.errors import ConfigError
from router.scaling_config import SelfScalingConfig

MAX_BODY_BYTES = 100 * 1024 * 1024
IN_CLUSTER_DRAIN_DELAY = 5.0
POD_NAME_VARIABLE = "POD_NAME"
SERVICE_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusterPurpose(StrEnum):
    """DevTest clusters disable the router's own autoscaling, as in v1."""

    FAST_PROD = "FastProd"
    DENSE_PROD = "DenseProd"
    DEV_TEST = "DevTest"


class ListenConfig(_Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080


class TlsConfig(_Strict):
    cert_file: Path
    key_file: Path


class KeyAuth(_Strict):
    """v1 key auth: either key is accepted, so one can be rotated while clients use the other."""

    mode: Literal["key"] = "key"
    primary_key: Annotated[str, Field(min_length=16)]
    secondary_key: Annotated[str, Field(min_length=16)]


SigningAlgorithm = Literal["ES256", "ES384", "RS256", "RS384", "RS512", "EdDSA"]
DEFAULT_ALGORITHMS: tuple[SigningAlgorithm, ...] = ("ES256", "RS256")


class TokenAuth(_Strict):
    """JWT auth: tokens signed by the deployer's key, or by an external OIDC issuer's JWKS.

    `public_keys` are PEM public keys (several, so the signing key can be rotated);
    `jwks_url` trusts an external issuer instead. The audience defaults to the service name.
    """

    mode: Literal["token"] = "token"
    issuer: str
    audience: str | None = None
    public_keys: list[str] = Field(default_factory=list)
    jwks_url: str | None = None
    algorithms: list[SigningAlgorithm] = Field(default_factory=lambda: list(DEFAULT_ALGORITHMS))
    leeway_seconds: Annotated[float, Field(ge=0)] = 30.0

    @model_validator(mode="after")
    def _one_key_source(self) -> TokenAuth:
        if bool(self.public_keys) == bool(self.jwks_url):
            raise ValueError("give exactly one of public_keys or jwks_url")
        return self


class NoAuth(_Strict):
    mode: Literal["none"] = "none"


AuthConfig = Annotated[KeyAuth | TokenAuth | NoAuth, Field(discriminator="mode")]


class AutoscaleConfig(_Strict):
    """v1's autoscale_* parameters; `scale_down_delay_seconds` is the cautious delay."""

    enabled: bool = True
    min_replicas: PositiveInt = 1
    max_replicas: PositiveInt = 10
    refresh_seconds: PositiveFloat = 1.0
    target_utilization: Annotated[int, Field(gt=0, le=100)] = 70
    scale_down_delay_seconds: PositiveFloat = 60.0
    tolerance: Annotated[float, Field(ge=0, lt=1)] = 0.1

    @model_validator(mode="after")
    def _min_le_max(self) -> AutoscaleConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        return self


class DataCollectionConfig(_Strict):
    """Model data collection: inputs and outputs as JSON lines, rotated by size."""

    enabled: bool = False
    directory: Path | None = None
    max_bytes: PositiveInt = 10 * 1024 * 1024
    backup_count: Annotated[int, Field(ge=0)] = 5
    max_record_bytes: PositiveInt = 1024 * 1024
    queue_size: PositiveInt = 10_000

    @model_validator(mode="after")
    def _directory_when_enabled(self) -> DataCollectionConfig:
        if self.enabled and self.directory is None:
            raise ValueError("directory is required when data collection is enabled")
        return self


class KubernetesTarget(_Strict):
    """Where a service's replicas live in the cluster (discovery and the scale subresource)."""

    namespace: str = "default"
    deployment: str | None = None


class LocalProcessScaling(_Strict):
    """Start replicas as local processes: `command` may use {port}; `env` is added."""

    command: list[str]
    env: dict[str, str] = Field(default_factory=dict)
    cwd: Path | None = None
    host: str = "127.0.0.1"
    ready_path: str = "/"
    ready_timeout_seconds: PositiveFloat = 30.0


class ServiceConfig(_Strict):
    name: Annotated[str, Field(pattern=SERVICE_NAME_PATTERN)]
    auth: AuthConfig = Field(default_factory=NoAuth)
    replicas: list[str] = Field(default_factory=list)
    num_replicas: PositiveInt | None = None
    replica_max_concurrent_requests: PositiveInt = 1
    max_request_wait_time: PositiveInt = 500
    scoring_timeout_ms: PositiveInt = 60_000
    swagger_requires_auth: bool = True
    autoscale: AutoscaleConfig = Field(default_factory=lambda: AutoscaleConfig(enabled=False))
    data_collection: DataCollectionConfig = Field(default_factory=DataCollectionConfig)
    kubernetes: KubernetesTarget | None = None
    local_process: LocalProcessScaling | None = None


class KubernetesDiscoveryConfig(_Strict):
    """Watch EndpointSlices labelled with `service_label`; its value names the web service.

    The default is the label Kubernetes itself puts on every EndpointSlice, so the Kubernetes
    Service only has to carry the web service's name.
    """

    namespace: str = "default"
    service_label: str = "kubernetes.io/service-name"
    port_name: str | None = None
    kubeconfig: Path | None = None
    in_cluster: bool = False


class DiscoveryConfig(_Strict):
    kind: Literal["static", "kubernetes"] = "static"
    kubernetes: KubernetesDiscoveryConfig = Field(default_factory=KubernetesDiscoveryConfig)


class PeersConfig(_Strict):
    """Other router instances: from a static list or from the Kubernetes API (Pods by label)."""

    kind: Literal["none", "static", "kubernetes"] = "none"
    self_name: str = "router-0"
    static: dict[str, str] = Field(default_factory=dict)
    namespace: str = "default"
    label_selector: str = "app=aksflight-router"
    port: Annotated[int, Field(gt=0, le=65535)] = 8080
    refresh_seconds: PositiveFloat = 1.0


class ScalerConfig(_Strict):
    kind: Literal["none", "kubernetes", "local"] = "none"


class AccessLogConfig(_Strict):
    enabled: bool = True
    path: Path | None = None


class RouterConfig(_Strict):
    listen: ListenConfig = Field(default_factory=ListenConfig)
    tls: TlsConfig | None = None
    cluster_purpose: ClusterPurpose = ClusterPurpose.FAST_PROD
    max_request_body_bytes: PositiveInt = MAX_BODY_BYTES
    replay_buffer_bytes: Annotated[int, Field(ge=0)] = 1024 * 1024
    replica_retry_seconds: PositiveFloat = 1.0
    reload_seconds: Annotated[float, Field(ge=0)] = 1.0
    # On SIGTERM: readiness off at once, keep serving for drain_delay_seconds while load
    # balancers notice (None: 5 s when discovery or peers use Kubernetes, else 0), then stop
    # accepting and give requests in flight up to shutdown_grace_seconds (None: the longest
    # scoring_timeout_ms of any service, at least 1 s).
    drain_delay_seconds: Annotated[float, Field(ge=0)] | None = None
    shutdown_grace_seconds: Annotated[float, Field(ge=0)] | None = None
    access_log: AccessLogConfig = Field(default_factory=AccessLogConfig)
    discovery: DiscoveryConfig = Field(default_factory=DiscoveryConfig)
    peers: PeersConfig = Field(default_factory=PeersConfig)
    scaler: ScalerConfig = Field(default_factory=ScalerConfig)
    self_scaling: SelfScalingConfig = Field(default_factory=SelfScalingConfig)
    services: list[ServiceConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_services(self) -> RouterConfig:
        names = [service.name for service in self.services]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate service names: {', '.join(duplicates)}")
        return self

    @property
    def own_name(self) -> str:
        """This router's name among its peers: in a pod, the pod's name (`POD_NAME`, from the
        downward API), since every router pod reads the same file; else `peers.self_name`."""
        pod = os.environ.get(POD_NAME_VARIABLE, "").strip()
        if pod and self.peers.kind == "kubernetes":
            return pod
        return self.peers.self_name

    def service(self, name: str) -> ServiceConfig | None:
        return next((service for service in self.services if service.name == name), None)

    @property
    def in_cluster(self) -> bool:
        return self.discovery.kind == "kubernetes" or self.peers.kind == "kubernetes"

    @property
    def drain_delay(self) -> float:
        if self.drain_delay_seconds is not None:
            return self.drain_delay_seconds
        return IN_CLUSTER_DRAIN_DELAY if self.in_cluster else 0.0

    @property
    def shutdown_grace(self) -> float:
        if self.shutdown_grace_seconds is not None:
            return self.shutdown_grace_seconds
        longest = max((s.scoring_timeout_ms for s in self.services), default=1000)
        return max(1.0, longest / 1000)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"]) or "(top level)"
    return f"{location}: {error['msg']}"


def parse_config(data: Any, source: str = "router config") -> RouterConfig:
    """Validate already-parsed data; raise ConfigError naming the first wrong field."""
    try:
        return RouterConfig.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_error(exc)}") from exc


def load_config(path: Path | str) -> RouterConfig:
    """Read a YAML or JSON configuration file (JSON is YAML, but .json is parsed strictly)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from exc
    try:
        data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(
            f"{file}: not valid {file.suffix.lstrip('.') or 'YAML'}: {detail}"
        ) from exc
    return parse_config(data, str(file))


def dump_config(config: RouterConfig) -> str:
    """Serialise for writing a file the router can load (used by the deployer and tests)."""
    return json.dumps(config.model_dump(mode="json", exclude_none=True), indent=2)
