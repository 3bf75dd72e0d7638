"""Per-cloud name suffixes and regions, read from `catalogue/clouds.yaml` (data, not code)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from rules.errors import CatalogueError

SUFFIX_KEYS = (
    "aks_api",
    "aks_private",
    "mcr",
    "mcr_data",
    "acr",
    "storage",
    "azureml_api",
    "kusto",
    "cloudapp",
    "management",
    "login",
)


@dataclass(frozen=True, slots=True)
class CloudProfile:
    """One cloud's suffixes; None marks a name the documentation does not give."""

    name: str
    suffixes: dict[str, str | None]
    regions: frozenset[str]


# libyaml's parser when PyYAML has it: the catalogue is read on every run.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_package_yaml(name: str) -> Any:
    """One of the YAML data files shipped in `rules/catalogue/`, parsed."""
    text = resources.files("rules").joinpath("catalogue", name).read_text(encoding="utf-8")
    return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 (a safe loader)


@cache
def cloud_profiles() -> dict[str, CloudProfile]:
    data = read_package_yaml("clouds.yaml")
    profiles = {}
    for name, entry in data.items():
        missing = [k for k in (*SUFFIX_KEYS, "regions") if k not in entry]
        if missing:
            raise CatalogueError(f"clouds.yaml: {name}: missing {', '.join(missing)}")
        suffixes = {k: entry[k] for k in SUFFIX_KEYS}
        profiles[name] = CloudProfile(name, suffixes, frozenset(entry["regions"]))
    return profiles


def cloud_profile(name: str) -> CloudProfile:
    try:
        return cloud_profiles()[name]
    except KeyError:
        raise CatalogueError(f"unknown cloud {name!r}") from None
