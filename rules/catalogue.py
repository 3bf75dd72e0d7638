"""The requirement catalogue: data files shipped in `rules/catalogue/`, plus the user's own.

A catalogue file holds requirement templates. Rendering one against a config fills its host
template from the config and the cloud's suffixes, evaluates its condition, and yields a
`Requirement` — or nothing, when the condition does not hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rules.clouds import SUFFIX_KEYS, cloud_profile
from rules.conditions import Condition, Context, compile_condition
from rules.config import EnvironmentConfig
from rules.errors import CatalogueError
from rules.model import CheckKind, Phase, Protocol, Requirement
from rules.yamlfiles import read_package_yaml

BUILTIN_SETS = ("azureml-aks", "aks-base", "azureml-workspace")
_VARIABLE = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")
UNDOCUMENTED = "<not documented>"


class _TemplateModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    host: str | None = None
    target: str | None = None
    kind: Literal["k8s", "peer"] | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    protocol: Protocol = Protocol.HTTPS
    phases: list[Phase] = Field(min_length=1)
    purpose: str
    source: str = Field(min_length=1)
    breaks: str = ""
    when: str | None = None
    resolve_only: bool = False
    service_tag: str | None = None
    fqdn_tag: str | None = None
    private_endpoint: Literal["registry", "storage", "api_server", "workspace"] | None = None
    private_link_zone: str | None = None
    severity: Literal["fail", "warn"] = "fail"
    note: str = ""


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    set: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    title: str
    requirements: list[_TemplateModel]


@dataclass(frozen=True, slots=True)
class RequirementTemplate:
    """One catalogue entry, with its condition compiled."""

    catalogue: str
    spec: _TemplateModel
    condition: Condition | None

    @property
    def id(self) -> str:
        return f"{self.catalogue}/{self.spec.id}"


@dataclass(frozen=True, slots=True)
class Catalogue:
    name: str
    title: str
    templates: tuple[RequirementTemplate, ...]


def condition_context(config: EnvironmentConfig) -> dict[str, Any]:
    """The names a `when:` condition can use: the config, as plain data."""
    data = config.model_dump(mode="json")
    data["workspace"]["region"] = config.workspace_region
    return data


def _sample_context() -> dict[str, Any]:
    from rules.config import parse_config

    sample = parse_config(
        {
            "region": "eastus",
            "cluster": {"name": "sample"},
            "registry": "sampleacr",
            "storage_account": "sample",
        }
    )
    return condition_context(sample)


def parse_catalogue(data: object, origin: str) -> Catalogue:
    """Validate parsed YAML of a catalogue file; `origin` names it in error messages."""
    try:
        model = _FileModel.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CatalogueError(f"{origin}: {where}: {first['msg']}") from None
    known = _sample_context()
    templates = []
    seen: set[str] = set()
    for spec in model.requirements:
        if spec.id in seen:
            raise CatalogueError(f"{origin}: requirement id {spec.id!r} appears twice")
        seen.add(spec.id)
        if (spec.kind is None) == (spec.host is None):
            raise CatalogueError(f"{origin}: {spec.id}: give either host or kind (k8s/peer)")
        if spec.kind is None and spec.port is None:
            raise CatalogueError(f"{origin}: {spec.id}: a host requirement needs a port")
        for template in (spec.host, spec.private_link_zone, spec.service_tag):
            if template:
                _check_template(template, f"{origin}: {spec.id}")
        try:
            condition = compile_condition(spec.when, known) if spec.when else None
        except CatalogueError as exc:
            raise CatalogueError(f"{origin}: {spec.id}: {exc}") from None
        templates.append(RequirementTemplate(model.set, spec, condition))
    return Catalogue(model.set, model.title, tuple(templates))


@cache
def builtin_catalogue(name: str) -> Catalogue:
    if name not in BUILTIN_SETS:
        raise CatalogueError(f"unknown catalogue {name!r} (known: {', '.join(BUILTIN_SETS)})")
    return parse_catalogue(read_package_yaml(f"{name}.yaml"), f"{name}.yaml")


def _variables(config: EnvironmentConfig) -> dict[str, str | None]:
    """Template values. A value the user did not give becomes `*` (a pattern, not probed);
    a suffix the documentation does not give for the cloud becomes None (undocumented)."""
    profile = cloud_profile(config.cloud)
    suffixes = {
        key: (value.replace("{region}", config.region) if value else None)
        for key, value in profile.suffixes.items()
    }
    api_fqdn = config.cluster.api_server_fqdn
    if api_fqdn is None:
        api_fqdn = f"*.{suffixes['aks_api']}" if suffixes["aks_api"] else None
    values: dict[str, str | None] = {
        "region": config.region,
        "cloud": config.cloud,
        "cluster.name": config.cluster.name.lower(),
        "cluster.api_server_fqdn": api_fqdn,
        "registry.name": config.registry.name.lower(),
        "storage_account": config.storage_account,
        "workspace.region": config.workspace_region,
        "workspace.id": config.workspace.id or "*",
        "service.leaf_domain_label": config.service.leaf_domain_label or "",
        "service.leaf_domain_suffix": config.service.leaf_domain_suffix or "*",
    }
    values.update({f"suffix.{k}": v for k, v in suffixes.items()})
    return values


_KNOWN_VARIABLES = frozenset(
    [
        "region",
        "cloud",
        "cluster.name",
        "cluster.api_server_fqdn",
        "registry.name",
        "storage_account",
        "workspace.region",
        "workspace.id",
        "service.leaf_domain_label",
        "service.leaf_domain_suffix",
        *(f"suffix.{k}" for k in SUFFIX_KEYS),
    ]
)


def _check_template(template: str, where: str) -> None:
    for name in _VARIABLE.findall(template):
        if name not in _KNOWN_VARIABLES:
            raise CatalogueError(f"{where}: unknown template variable {{{name}}}")
    rest = _VARIABLE.sub("x", template)
    if not re.fullmatch(r"[A-Za-z0-9*.-]+", rest):
        raise CatalogueError(f"{where}: template {template!r} has characters a host cannot have")


def _placeholders(config: EnvironmentConfig) -> dict[str, str]:
    """Template variables the config left unset, mapped to the field that would set them."""
    unset = {
        "cluster.api_server_fqdn": config.cluster.api_server_fqdn,
        "workspace.id": config.workspace.id,
        "service.leaf_domain_suffix": config.service.leaf_domain_suffix,
    }
    return {name: name for name, value in unset.items() if value is None}


def _render(template: str, values: Mapping[str, str | None]) -> str | None:
    missing = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal missing
        value = values[match.group(1)]
        if value is None:
            missing = True
            return ""
        return value

    rendered = _VARIABLE.sub(substitute, template)
    return None if missing else rendered


def render_requirements(
    catalogues: Iterable[Catalogue], config: EnvironmentConfig
) -> list[Requirement]:
    """Every requirement whose condition holds for `config`, in catalogue order."""
    values = _variables(config)
    placeholders = _placeholders(config)
    context: Context = condition_context(config)
    private = set(config.network.private_endpoints)
    out: list[Requirement] = []
    for catalogue in catalogues:
        for template in catalogue.templates:
            spec = template.spec
            if template.condition is not None and not template.condition(context):
                continue
            note = spec.note
            missing_field = None
            if spec.kind is not None:
                host = spec.target or spec.id
            else:
                assert spec.host is not None
                rendered = _render(spec.host, values)
                if rendered is None:
                    host = UNDOCUMENTED
                    note = (
                        f"the documentation gives no name for this in the {config.cloud} "
                        "cloud; find it out before you rely on this check"
                    )
                else:
                    host = rendered
                    used = set(_VARIABLE.findall(spec.host))
                    missing_field = next((placeholders[v] for v in used if v in placeholders), None)
            zone = _render(spec.private_link_zone, values) if spec.private_link_zone else None
            tag = _render(spec.service_tag, values) if spec.service_tag else None
            out.append(
                Requirement(
                    id=template.id,
                    catalogue=catalogue.name,
                    host=host,
                    port=spec.port,
                    protocol=spec.protocol,
                    phases=tuple(sorted(set(spec.phases), key=lambda p: p.rank)),
                    purpose=spec.purpose,
                    source=spec.source,
                    breaks=spec.breaks,
                    resolve_only=spec.resolve_only,
                    service_tag=tag,
                    fqdn_tag=spec.fqdn_tag,
                    private_link_zone=zone,
                    private_endpoint=spec.private_endpoint in private,
                    severity=spec.severity,
                    kind=CheckKind(spec.kind) if spec.kind else None,
                    missing_field=missing_field,
                    note=note,
                )
            )
    return out


def extra_dependency_requirements(config: EnvironmentConfig) -> list[Requirement]:
    """The model's own outbound needs, declared by the user: all in the serving phase."""
    out = []
    for index, dep in enumerate(config.extra_dependencies):
        purpose = dep.purpose or "a dependency of the model"
        out.append(
            Requirement(
                id=f"extra/{index}",
                catalogue="extra",
                host=dep.host,
                port=dep.port,
                protocol=Protocol(dep.protocol),
                phases=(Phase.SERVING,),
                purpose=purpose,
                source="config: extra_dependencies",
                breaks=f"the model cannot reach {dep.host} ({purpose}); scoring requests fail",
            )
        )
    return out


def requirements_for(
    config: EnvironmentConfig, extra_catalogues: Iterable[Catalogue] = ()
) -> list[Requirement]:
    """All requirements for `config`: the base set, the config's optional sets, the user's
    own catalogue files, and the extra dependencies."""
    names = ["azureml-aks", *(n for n in config.catalogues if n != "azureml-aks")]
    catalogues = [builtin_catalogue(n) for n in dict.fromkeys(names)]
    catalogues.extend(extra_catalogues)
    return [*render_requirements(catalogues, config), *extra_dependency_requirements(config)]
