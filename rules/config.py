"""The environment config: one deployment environment, validated before anything runs.

Validation follows Azure's own naming rules, so a config that passes here yields only
names, CIDRs and ports that are safe inside firewall rules and manifests. Errors are
one-line `ConfigError`s that name the field (`service.auth`, `extra_dependencies[3].host`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from rules.clouds import cloud_profile
from rules.errors import ConfigError
from rules.names import check_cidr, check_host_or_ip, check_hostname, check_label, is_ip_address

_ACR_NAME = re.compile(r"^[A-Za-z0-9]{5,50}$")
_STORAGE_NAME = re.compile(r"^[a-z0-9]{3,24}$")
_AKS_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$")
_SUFFIX = re.compile(r"^[a-z0-9]{1,20}$")
_TEXT_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")

MAX_EXTRA_DEPENDENCIES = 100_000


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _validator(check: Callable[[str], str | None], what: str) -> Callable[[str], str]:
    """A pydantic validator from a `rules.names` check: one message shape for all of them."""

    def validate(value: str) -> str:
        problem = check(value)
        if problem:
            raise ValueError(f"invalid {what} {value!r}: {problem}")
        return value

    return validate


_hostname = _validator(check_hostname, "host name")
_host_or_ip = _validator(check_host_or_ip, "host name")
_label = _validator(check_label, "DNS label")
_cidr = _validator(check_cidr, "CIDR")


def _ip(value: str) -> str:
    if not is_ip_address(value):
        raise ValueError(f"invalid IP address {value!r}")
    return str(ipaddress.ip_address(value))


def _text(value: str) -> str:
    if _TEXT_FORBIDDEN.search(value):
        raise ValueError("control characters (newlines, tabs) are not allowed")
    if len(value) > 200:
        raise ValueError("at most 200 characters")
    return value


HostName = Annotated[str, BeforeValidator(_lower), AfterValidator(_hostname)]
HostOrIp = Annotated[str, BeforeValidator(_lower), AfterValidator(_host_or_ip)]
DnsLabel = Annotated[str, AfterValidator(_label)]
Cidr = Annotated[str, AfterValidator(_cidr)]
IpAddress = Annotated[str, AfterValidator(_ip)]
Text = Annotated[str, AfterValidator(_text)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Cluster(_Strict):
    name: str
    api_server_fqdn: HostName | None = None
    network_plugin: Literal["azure", "kubenet"] = "azure"
    purpose: Literal["DevTest", "FastProd", "DenseProd"] = "FastProd"

    @model_validator(mode="after")
    def _name(self) -> Cluster:
        if not _AKS_NAME.fullmatch(self.name):
            raise ValueError(
                f"invalid AKS name {self.name!r}: 1 to 63 letters, digits, '-' or '_', "
                "starting and ending with a letter or digit"
            )
        return self


class Workspace(_Strict):
    region: str | None = None
    id: Annotated[str, BeforeValidator(_lower), AfterValidator(_label)] | None = None


class Registry(_Strict):
    name: str
    dedicated_data_endpoints: bool = False

    @model_validator(mode="after")
    def _name(self) -> Registry:
        if not _ACR_NAME.fullmatch(self.name):
            raise ValueError(f"invalid ACR name {self.name!r}: 5 to 50 letters and digits")
        return self


class Service(_Strict):
    auth: Literal["key", "token", "none"] = "key"
    domain: Literal["auto", "custom"] = "custom"
    leaf_domain_label: DnsLabel | None = None
    leaf_domain_suffix: Annotated[str, Field(pattern=_SUFFIX.pattern)] | None = None

    @model_validator(mode="after")
    def _domain(self) -> Service:
        if self.domain == "auto" and self.leaf_domain_label is None:
            raise ValueError("leaf_domain_label is required when domain is auto")
        if self.leaf_domain_label is not None and len(self.leaf_domain_label) > 57:
            raise ValueError("leaf_domain_label: at most 57 characters (6 are appended)")
        return self


class ExtraDependency(_Strict):
    host: HostOrIp
    port: Annotated[int, Field(ge=1, le=65535)]
    protocol: Literal["tcp", "udp", "http", "https"] = "tcp"
    purpose: Text = ""


PrivateEndpoint = Literal["registry", "storage", "api_server", "workspace"]


class Network(_Strict):
    nameservers: list[IpAddress] = Field(default_factory=list, max_length=16)
    source_cidrs: list[Cidr] = Field(default_factory=list, max_length=256)
    private_endpoints: list[PrivateEndpoint] = Field(default_factory=list)


CatalogueName = Literal["azureml-aks", "aks-base", "azureml-workspace"]


def _default_catalogues() -> list[CatalogueName]:
    return ["azureml-aks"]


class EnvironmentConfig(_Strict):
    """One deployment environment (the `-c FILE` of every command)."""

    cloud: Literal["public", "china", "usgov"] = "public"
    region: str
    cluster: Cluster
    workspace: Workspace = Field(default_factory=Workspace)
    registry: Registry
    storage_account: str
    service: Service = Field(default_factory=Service)
    extra_dependencies: list[ExtraDependency] = Field(
        default_factory=list, max_length=MAX_EXTRA_DEPENDENCIES
    )
    network: Network = Field(default_factory=Network)
    catalogues: list[CatalogueName] = Field(default_factory=_default_catalogues)

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any) -> Any:
        """`registry: myacr` is short for `registry: {name: myacr}`."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("registry"), str):
            data["registry"] = {"name": data["registry"]}
        return data

    @model_validator(mode="after")
    def _regions(self) -> EnvironmentConfig:
        profile = cloud_profile(self.cloud)
        if self.region not in profile.regions:
            raise ConfigError("region", f"unknown {self.cloud} region {self.region!r}")
        if self.workspace.region is not None and self.workspace.region not in profile.regions:
            raise ConfigError(
                "workspace.region",
                f"unknown {self.cloud} region {self.workspace.region!r}",
            )
        if not _STORAGE_NAME.fullmatch(self.storage_account):
            raise ConfigError(
                "storage_account",
                f"invalid storage account name {self.storage_account!r}: "
                "3 to 24 lowercase letters and digits",
            )
        return self

    @property
    def workspace_region(self) -> str:
        return self.workspace.region or self.region


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith("function-") or part in {"str", "int", "bool"}:
            continue
        else:
            path += f".{part}" if path else part
    return path


def _rule(error: Any) -> str:
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required"
    if error["type"] == "literal_error":
        return message.replace("Input should be", "must be")
    return message


def parse_config(data: object) -> EnvironmentConfig:
    """Validate parsed YAML into an `EnvironmentConfig`, or raise one `ConfigError`."""
    if not isinstance(data, dict):
        raise ConfigError("", "the config must be a mapping of keys to values")
    try:
        return EnvironmentConfig.model_validate(data)
    except ConfigError:
        raise
    except ValidationError as exc:
        first = exc.errors()[0]
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, ConfigError):
            raise cause from None
        raise ConfigError(_field_path(tuple(first["loc"])), _rule(first)) from None
